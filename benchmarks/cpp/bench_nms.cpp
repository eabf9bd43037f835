// BM_nms/<boxes>/<isa>: nms at iou 0.5 on PERF.md's random boxes, per ISA tier.
#include <benchmark/benchmark.h>
#include <tvops/tvops.h>

#include "workloads.h"

namespace {

void BM_nms(benchmark::State& state, std::string isa) {
  tvops::set_cpu_isa(isa);
  const int64_t n = state.range(0);
  std::vector<float> boxes, scores;
  tvops::bench::random_boxes(n, boxes, scores);
  auto b = tvops::Tensor::from_blob(boxes.data(), {n, 4}, {}, tvops::DType::Float32, {});
  auto s = tvops::Tensor::from_blob(scores.data(), {n}, {}, tvops::DType::Float32, {});
  int64_t kept = 0;
  for (auto _ : state) {
    tvops::Tensor keep = tvops::nms(b, s, 0.5);
    kept = keep.numel();
    benchmark::DoNotOptimize(keep.data_ptr());
  }
  state.counters["kept"] = static_cast<double>(kept);
  state.SetItemsProcessed(state.iterations() * n);
}

// BM_batched_nms/<boxes>/<isa>: batched_nms at iou 0.5, 80 categories (bnms-20k-80).
void BM_batched_nms(benchmark::State& state, std::string isa) {
  tvops::set_cpu_isa(isa);
  const int64_t n = state.range(0);
  std::vector<float> boxes, scores;
  tvops::bench::random_boxes(n, boxes, scores);
  std::vector<int64_t> classes(n);
  for (int64_t i = 0; i < n; ++i) classes[i] = (i * 2654435761u) % 80;
  auto b = tvops::Tensor::from_blob(boxes.data(), {n, 4}, {}, tvops::DType::Float32, {});
  auto s = tvops::Tensor::from_blob(scores.data(), {n}, {}, tvops::DType::Float32, {});
  auto c = tvops::Tensor::from_blob(classes.data(), {n}, {}, tvops::DType::Int64, {});
  for (auto _ : state) {
    tvops::Tensor keep = tvops::batched_nms(b, s, c, 0.5);
    benchmark::DoNotOptimize(keep.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

}  // namespace

int main(int argc, char** argv) {
  for (const std::string& isa : tvops::available_cpu_isas())
    benchmark::RegisterBenchmark(("BM_nms/f32/" + isa).c_str(), BM_nms, isa)
        ->Arg(1000)->Arg(5000)->Arg(20000)->Unit(benchmark::kMillisecond);
  for (const std::string& isa : tvops::available_cpu_isas())
    benchmark::RegisterBenchmark(("BM_batched_nms/f32/" + isa).c_str(), BM_batched_nms, isa)
        ->Arg(20000)->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("tvops_variant", tvops::build_info().variant);
  benchmark::AddCustomContext("cpu_model", tvops::cpu_features().model);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
