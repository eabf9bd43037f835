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

const char* kInputs[] = {"x", "ps_x", "rois", "boxes", "scores", "idxs", "p2", "p3", "pool_boxes", "offset", "weight",
                         "mask"};
const char* kGrads[] = {"x", "ps_x", "p2", "p3", "offset", "weight", "mask"};
constexpr int kDeformOutput = 7;  // outputs from here on: deform_conv2d (summed in another order than torchvision)

at::Tensor loss(const std::vector<c10::IValue>& out) {
  const auto t = [&](int i) { return out[i].toTensor(); };
  return (t(2) * t(2)).sum() + t(3).sum() + t(4).sum() + (t(5) * 3).sum() + t(6).sum() + (t(7) * t(7)).mean() +
         t(8).mean();
}

// tvops' RoI kernels and nms give torchvision's CPU results bit for bit; its
// deform_conv2d sums in another order, and CUDA kernels round differently.
bool matches(const at::Tensor& got, const at::Tensor& want, bool exact) {
  if (got.sizes() != want.sizes() || got.dtype() != want.dtype()) return false;
  return exact ? at::equal(got, want) : at::allclose(got, want, 1e-4, 1e-4);
}

void run(torch::jit::Module& module, const torch::Device& device) {
  const std::string where = device.str() + ": ";
  const bool cpu = device.is_cpu();
  module.to(device);  // its parameters (deform_conv2d's bias) too
  for (at::Tensor p : module.parameters()) p.mutable_grad() = at::Tensor();  // no CPU grads left to add to
  // The expectations come from torchvision in float32: compare CUDA's exact float32
  // deform_conv2d with them (TF32 would round the products to 10 bits).
  at::globalContext().setAllowTF32CuDNN(false);
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
  check(out.size() == 9, where + "nine outputs");
  for (size_t i = 0; i < out.size(); ++i) {
    const at::Tensor want = module.attr("expected_" + std::to_string(i)).toTensor().cpu();
    check(matches(out[i].toTensor().detach().cpu(), want, cpu && i < kDeformOutput),
          where + "output " + std::to_string(i) + " differs from torchvision's");
  }
  loss(out).backward();
  for (size_t i = 0; i < leaves.size(); ++i) {
    const std::string name = kGrads[i];
    const bool exact = cpu && (name == "ps_x" || name == "p2" || name == "p3");  // no deform_conv2d term
    check(matches(leaves[i].grad().cpu(), module.attr("expected_grad_" + name).toTensor().cpu(), exact),
          where + "gradient of " + name + " differs from torchvision's");
  }
  // Backward operators refuse a second derivative.
  at::Tensor x = leaves[0].detach().requires_grad_();
  std::vector<c10::IValue> with_x = inputs;
  with_x[0] = x;
  at::Tensor pooled = module.forward(with_x).toTupleRef().elements()[2].toTensor();
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
  run(module, torch::kCPU);
  if (torch::cuda::is_available()) run(module, torch::kCUDA);
  check(!process_maps_mention("torchvision"), "libtorchvision was loaded");
  check(process_maps_mention("libtvops_torch"), "tvops_torch was not loaded");
  if (failures) return 1;
  std::cout << "scripted torchvision ops ran on tvops_torch (" << (torch::cuda::is_available() ? "CPU, CUDA" : "CPU")
            << ")\n";
  return 0;
}
