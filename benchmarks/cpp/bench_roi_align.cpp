// PERF.md's RoI workloads per ISA tier: ra7 / ra14 forward (x [2,256,200,304], 2000
// RoIs, scale 1/4, sampling 2, aligned) and ra7-bwd (the backward alone).
#include <benchmark/benchmark.h>
#include <tvops/tvops.h>

#include <random>
#include <vector>

#include "workloads.h"

namespace {

struct RoiInputs {
  std::vector<float> x, rois, grad;
  tvops::Tensor input, roi, grad_out;
  RoiInputs(int64_t pooled) {
    std::mt19937 rng(0);
    std::normal_distribution<float> normal;
    x.resize(2 * 256 * 200 * 304);
    for (float& v : x) v = normal(rng);
    std::vector<float> boxes, scores;
    tvops::bench::random_boxes(2000, boxes, scores);
    rois.resize(2000 * 5);
    for (int i = 0; i < 2000; ++i) {
      rois[5 * i] = float(i % 2);
      for (int c = 0; c < 4; ++c) rois[5 * i + 1 + c] = boxes[4 * i + c] * 0.8f;  // image of size 800
    }
    grad.resize(2000 * 256 * pooled * pooled);
    for (float& v : grad) v = normal(rng);
    input = tvops::Tensor::from_blob(x.data(), {2, 256, 200, 304}, {}, tvops::DType::Float32, {});
    roi = tvops::Tensor::from_blob(rois.data(), {2000, 5}, {}, tvops::DType::Float32, {});
    grad_out = tvops::Tensor::from_blob(grad.data(), {2000, 256, pooled, pooled}, {}, tvops::DType::Float32, {});
  }
};

void BM_roi_align(benchmark::State& state, std::string isa, int64_t pooled) {
  tvops::set_cpu_isa(isa);
  static RoiInputs* in7 = new RoiInputs(7);
  static RoiInputs* in14 = new RoiInputs(14);
  RoiInputs& in = pooled == 7 ? *in7 : *in14;
  for (auto _ : state) {
    tvops::Tensor out = tvops::roi_align(in.input, in.roi, 0.25, pooled, pooled, 2, true);
    benchmark::DoNotOptimize(out.data_ptr());
  }
}

void BM_roi_align_backward(benchmark::State& state, std::string isa) {
  tvops::set_cpu_isa(isa);
  static RoiInputs* in = new RoiInputs(7);
  for (auto _ : state) {
    tvops::Tensor g = tvops::roi_align_backward(in->grad_out, in->roi, 0.25, 7, 7, 2, 256, 200, 304, 2, true);
    benchmark::DoNotOptimize(g.data_ptr());
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (const std::string& isa : tvops::available_cpu_isas()) {
    benchmark::RegisterBenchmark(("BM_roi_align/ra7/" + isa).c_str(), BM_roi_align, isa, 7)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("BM_roi_align/ra14/" + isa).c_str(), BM_roi_align, isa, 14)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("BM_roi_align_backward/ra7/" + isa).c_str(), BM_roi_align_backward, isa)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("tvops_variant", tvops::build_info().variant);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
