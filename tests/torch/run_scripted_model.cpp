// Loads the TorchScript file of script_model.py in a program linked to libtorch and
// tvops_torch only (no libtorchvision), runs it on its stored inputs and checks the
// outputs and the input gradients against torchvision's, stored beside them; then the
// same on CUDA when a device is there.
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "FAILED: " << what << "\n";
    ++failures;
  }
}

bool process_maps_mention(const std::string& needle) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(needle) != std::string::npos) return true;
  return false;
}

const char* kInputs[] = {"x", "ps_x", "rois", "boxes", "scores", "idxs", "p2", "p3", "pool_boxes"};
const char* kGrads[] = {"x", "ps_x", "p2", "p3"};

at::Tensor loss(const std::vector<c10::IValue>& out) {
  const auto t = [&](int i) { return out[i].toTensor(); };
  return (t(2) * t(2)).sum() + t(3).sum() + t(4).sum() + (t(5) * 3).sum() + t(6).sum();
}

void run(torch::jit::Module& module, const torch::Device& device, double tolerance) {
  const std::string where = device.str() + ": ";
  std::vector<c10::IValue> inputs;
  std::vector<at::Tensor> leaves;
  for (const char* name : kInputs) {
    at::Tensor t = module.attr(std::string("input_") + name).toTensor().to(device).clone();
    for (const char* g : kGrads)
      if (std::string(g) == name) {
        t.requires_grad_();
        leaves.push_back(t);
      }
    inputs.emplace_back(t);
  }
  const auto out = module.forward(inputs).toTupleRef().elements().vec();
  check(out.size() == 7, where + "seven outputs");
  for (size_t i = 0; i < out.size(); ++i) {
    const at::Tensor got = out[i].toTensor().detach().cpu();
    const at::Tensor want = module.attr("expected_" + std::to_string(i)).toTensor();
    const bool same = got.sizes() == want.sizes() && got.dtype() == want.dtype() &&
                      (tolerance == 0 ? at::equal(got, want) : at::allclose(got, want, tolerance, tolerance));
    check(same, where + "output " + std::to_string(i) + " differs from torchvision's");
  }
  loss(out).backward();
  for (size_t i = 0; i < leaves.size(); ++i) {
    const at::Tensor want = module.attr(std::string("expected_grad_") + kGrads[i]).toTensor();
    const at::Tensor got = leaves[i].grad().cpu();
    check(tolerance == 0 ? at::equal(got, want) : at::allclose(got, want, tolerance, tolerance),
          where + "gradient of " + kGrads[i] + " differs from torchvision's");
  }
  // Backward operators refuse a second derivative.
  at::Tensor x = leaves[0].detach().requires_grad_();
  at::Tensor pooled = module.run_method("forward", x, inputs[1], inputs[2], inputs[3], inputs[4], inputs[5],
                                        inputs[6], inputs[7], inputs[8]).toTupleRef().elements()[2].toTensor();
  at::Tensor upstream = at::ones_like(pooled).requires_grad_();
  auto grad_x = torch::autograd::grad({pooled}, {x}, {upstream}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  bool refused = false;
  try {
    grad_x.sum().backward();
  } catch (const c10::Error& e) {
    refused = std::string(e.what()).find("double backwards on roi_align not supported") != std::string::npos;
  }
  check(refused, where + "double backward raises");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: run_scripted_model MODEL.pt\n";
    return 2;
  }
  torch::jit::Module module = torch::jit::load(argv[1]);
  run(module, torch::kCPU, 0.0);  // tvops' CPU RoI kernels and nms are bit-identical to torchvision's
  if (torch::cuda::is_available()) run(module, torch::kCUDA, 1e-4);
  check(!process_maps_mention("torchvision"), "libtorchvision was loaded");
  check(process_maps_mention("libtvops_torch"), "tvops_torch was not loaded");
  if (failures) return 1;
  std::cout << "scripted torchvision ops ran on tvops_torch (" << (torch::cuda::is_available() ? "CPU, CUDA" : "CPU")
            << ")\n";
  return 0;
}
