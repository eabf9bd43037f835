// Links tvops::tvops from an installed package and runs nms on two overlapping
// boxes and one apart: the lower-scored overlapping box must go.
#include <tvops/tvops.h>

#include <cstdio>
#include <vector>

int main() {
  std::vector<float> boxes = {0, 0, 10, 10, 1, 1, 11, 11, 50, 50, 60, 60};
  std::vector<float> scores = {0.9f, 0.8f, 0.7f};
  auto b = tvops::Tensor::from_blob(boxes.data(), {3, 4}, {}, tvops::DType::Float32, {});
  auto s = tvops::Tensor::from_blob(scores.data(), {3}, {}, tvops::DType::Float32, {});
  tvops::Tensor keep = tvops::nms(b, s, 0.5);
  const int64_t* k = keep.data<int64_t>();
  std::printf("tvops %s (%s): kept %lld boxes\n", TVOPS_VERSION, tvops::build_info().variant.c_str(),
              static_cast<long long>(keep.numel()));
  bool ok = keep.numel() == 2 && k[0] == 0 && k[1] == 2;
  try {
    auto bad = tvops::Tensor::from_blob(boxes.data(), {12}, {}, tvops::DType::Float32, {});
    tvops::nms(bad, s, 0.5);
    ok = false;
  } catch (const tvops::Error& e) {
    std::printf("bad input rejected: %s\n", e.what());
  }
  return ok ? 0 : 1;
}
