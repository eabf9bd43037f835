// Pairwise IoU family on every CPU ISA tier against plain double-precision formulas
// written here, and the elementwise box utilities.
#include <gtest/gtest.h>
#include <tvops/tvops.h>

#include "per_isa.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace {

std::vector<double> random_boxes(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> pos(0, 1000), size(4, 204);
  std::vector<double> b(4 * n);
  for (int64_t i = 0; i < n; ++i) {
    b[4 * i] = pos(rng);
    b[4 * i + 1] = pos(rng);
    b[4 * i + 2] = b[4 * i] + size(rng);
    b[4 * i + 3] = b[4 * i + 1] + size(rng);
  }
  return b;
}

// IoU (0), GIoU (1), DIoU (2), CIoU (3) of two xyxy boxes, from their definitions.
double reference(const double* a, const double* b, int kind, double eps) {
  const double wa = a[2] - a[0], ha = a[3] - a[1], wb = b[2] - b[0], hb = b[3] - b[1];
  const double iw = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const double ih = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const double inter = iw * ih, uni = wa * ha + wb * hb - inter, iou = inter / uni;
  const double ew = std::max(a[2], b[2]) - std::min(a[0], b[0]), eh = std::max(a[3], b[3]) - std::min(a[1], b[1]);
  if (kind == 0) return iou;
  if (kind == 1) return iou - (ew * eh - uni) / (ew * eh);
  const double dx = (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2, dy = (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2;
  const double diou = iou - (dx * dx + dy * dy) / (ew * ew + eh * eh + eps);
  if (kind == 2) return diou;
  const double pi = 3.14159265358979323846;
  const double v = 4 / (pi * pi) * std::pow(std::atan(wa / ha) - std::atan(wb / hb), 2);
  return diou - v / (1 - iou + v + eps) * v;
}

class BoxIouPerIsa : public tvops::testing::PerIsa {};

TEST_P(BoxIouPerIsa, MatchesDoubleReference) {
  const int64_t n = 37, m = 53;  // not multiples of any vector width
  auto a = random_boxes(n, 1), b = random_boxes(m, 2);
  std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
  for (int kind = 0; kind < 4; ++kind) {
    for (bool f64 : {false, true}) {
      auto ta = f64 ? tvops::Tensor::from_blob(a.data(), {n, 4}, {}, tvops::DType::Float64, {})
                    : tvops::Tensor::from_blob(af.data(), {n, 4}, {}, tvops::DType::Float32, {});
      auto tb = f64 ? tvops::Tensor::from_blob(b.data(), {m, 4}, {}, tvops::DType::Float64, {})
                    : tvops::Tensor::from_blob(bf.data(), {m, 4}, {}, tvops::DType::Float32, {});
      tvops::Tensor out = tvops::pairwise_box_iou(ta, tb, static_cast<tvops::BoxIouKind>(kind), 1e-7);
      ASSERT_EQ(out.sizes(), (std::vector<int64_t>{n, m}));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
          const double got = f64 ? out.data<double>()[i * m + j] : out.data<float>()[i * m + j];
          const double* pa = f64 ? &a[4 * i] : nullptr;
          double ra[4], rb[4];
          for (int c = 0; c < 4; ++c) {  // the reference sees the same (rounded) inputs
            ra[c] = f64 ? pa[c] : double(af[4 * i + c]);
            rb[c] = f64 ? b[4 * j + c] : double(bf[4 * j + c]);
          }
          EXPECT_NEAR(got, reference(ra, rb, kind, 1e-7), f64 ? 1e-12 : 2e-5) << "kind " << kind << " at " << i
                                                                               << "," << j;
        }
    }
  }
}

TVOPS_INSTANTIATE_PER_ISA(BoxIouPerIsa);

TEST(Boxes, ConvertRoundTripsAndAreas) {
  auto b = random_boxes(10, 3);
  auto t = tvops::Tensor::from_blob(b.data(), {10, 4}, {}, tvops::DType::Float64, {});
  using F = tvops::BoxFormat;
  tvops::Tensor c = tvops::box_convert(tvops::box_convert(t, F::XYXY, F::CXCYWH), F::CXCYWH, F::XYWH);
  tvops::Tensor back = tvops::box_convert(c, F::XYWH, F::XYXY);
  tvops::Tensor area = tvops::box_area(c, F::XYWH);
  for (int64_t i = 0; i < 10; ++i) {
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(back.data<double>()[4 * i + k], b[4 * i + k], 1e-9);
    EXPECT_NEAR(area.data<double>()[i], (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]), 1e-6);
  }
}

TEST(Boxes, ClipAndRemoveSmall) {
  std::vector<float> b = {-5, -5, 700, 500, 10, 10, 12, 30, 100, 100, 200, 200};
  auto t = tvops::Tensor::from_blob(b.data(), {3, 4}, {}, tvops::DType::Float32, {});
  tvops::Tensor c = tvops::clip_boxes_to_image(t, 480, 640);
  const float* p = c.data<float>();
  EXPECT_EQ(std::vector<float>(p, p + 4), (std::vector<float>{0, 0, 640, 480}));
  tvops::Tensor k = tvops::remove_small_boxes(t, 5.0);
  EXPECT_EQ(std::vector<int64_t>(k.data<int64_t>(), k.data<int64_t>() + k.numel()), (std::vector<int64_t>{0, 2}));
}

TEST(Boxes, HalfConversionRoundsToNearestEven) {
  // 1 + 2^-11 is halfway between half 1.0 and its successor: ties to even (1.0);
  // 65520 rounds to inf; 2^-25 ties to zero, just above it to the smallest subnormal.
  std::vector<float> v = {1.0f, 1.0f + 0x1p-11f, 1.0f + 0x1.8p-11f, 65504.0f, 65520.0f, 0x1p-25f, 0x1.01p-25f, -2.0f};
  auto t = tvops::Tensor::from_blob(v.data(), {8}, {}, tvops::DType::Float32, {});
  tvops::Tensor h = t.to(tvops::DType::Float16);
  const uint16_t* p = h.data<uint16_t>();
  EXPECT_EQ(std::vector<uint16_t>(p, p + 8),
            (std::vector<uint16_t>{0x3C00, 0x3C00, 0x3C01, 0x7BFF, 0x7C00, 0x0000, 0x0001, 0xC000}));
  tvops::Tensor bf = t.to(tvops::DType::BFloat16);
  EXPECT_EQ(bf.data<uint16_t>()[0], 0x3F80);
  EXPECT_EQ(bf.data<uint16_t>()[7], 0xC000);
}

}  // namespace
