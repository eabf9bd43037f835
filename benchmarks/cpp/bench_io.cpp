// BM_decode_jpeg/<size>/<threads>, BM_decode_jpeg_to/<size>/<min side>, BM_decode_png/<size>,
// BM_decode_images/<count>: the codecs on a smooth synthetic photo-like card (the
// Python comparison, benchmarks/python/compare.py, uses the skimage astronaut and
// times torchvision and simplejpeg beside). Codecs don't depend on the ISA tier.
#include <benchmark/benchmark.h>
#include <tvops/tvops.h>

#include <cmath>
#include <vector>

namespace {

tvops::Tensor card(int64_t size) {
  tvops::Tensor t = tvops::Tensor::empty({3, size, size}, tvops::DType::UInt8);
  auto* p = t.data<uint8_t>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x) {
        const double v = 127.5 + 60 * std::sin(0.013 * x * (c + 1) + 0.007 * y) + 50 * std::cos(0.021 * (x - y));
        p[(c * size + y) * size + x] = static_cast<uint8_t>(v + ((x * 7 + y * 13) % 9));
      }
  return t;
}

void BM_decode_jpeg(benchmark::State& state) {
  const tvops::Tensor data = tvops::encode_jpeg(card(state.range(0)), 90);
  tvops::set_num_threads(static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(tvops::decode_jpeg(data).data_ptr());
  state.SetItemsProcessed(state.iterations() * state.range(0) * state.range(0));
}

void BM_decode_jpeg_to(benchmark::State& state) {
  const tvops::Tensor data = tvops::encode_jpeg(card(state.range(0)), 90);
  tvops::set_num_threads(1);
  tvops::DecodeSize size;
  size.min_height = size.min_width = state.range(1);
  for (auto _ : state)
    benchmark::DoNotOptimize(tvops::decode_jpeg(data, tvops::ImageReadMode::Unchanged, false, size).data_ptr());
}

void BM_decode_png(benchmark::State& state) {
  const tvops::Tensor data = tvops::encode_png(card(state.range(0)), 6);
  for (auto _ : state) benchmark::DoNotOptimize(tvops::decode_png(data).data_ptr());
  state.SetItemsProcessed(state.iterations() * state.range(0) * state.range(0));
}

void BM_decode_images(benchmark::State& state) {
  const tvops::Tensor one = tvops::encode_jpeg(card(1920), 90);
  const std::vector<tvops::Tensor> batch(static_cast<std::size_t>(state.range(0)), one);
  tvops::set_num_threads(static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(tvops::decode_images(batch).data());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(BM_decode_jpeg)->ArgsProduct({{512, 1920}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_decode_jpeg_to)->ArgsProduct({{1920}, {1920, 960, 480, 240}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_decode_png)->Arg(512)->Arg(1920)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_decode_images)->ArgsProduct({{64}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
