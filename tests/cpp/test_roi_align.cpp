// roi_align on every CPU ISA tier against a plain double-precision implementation of
// torchvision's definition (OPS.md §5), including degenerate RoIs (run under ASan in CI).
#include <gtest/gtest.h>
#include <tvops/tvops.h>

#include "per_isa.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace {

double bilinear(const double* plane, int64_t H, int64_t W, double y, double x) {
  if (!(y >= -1 && y <= H && x >= -1 && x <= W)) return 0;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  int64_t yl = int64_t(y), xl = int64_t(x), yh = yl + 1, xh = xl + 1;
  if (yl >= H - 1) { yl = yh = H - 1; y = double(yl); }
  if (xl >= W - 1) { xl = xh = W - 1; x = double(xl); }
  const double ly = y - yl, lx = x - xl;
  return (1 - ly) * (1 - lx) * plane[yl * W + xl] + (1 - ly) * lx * plane[yl * W + xh] +
         ly * (1 - lx) * plane[yh * W + xl] + ly * lx * plane[yh * W + xh];
}

std::vector<double> reference(const std::vector<double>& x, int64_t C, int64_t H, int64_t W,
                              const std::vector<double>& rois, double scale, int64_t PH, int64_t PW, int64_t sr,
                              bool aligned) {
  const int64_t K = int64_t(rois.size() / 5);
  std::vector<double> out(K * C * PH * PW);
  for (int64_t k = 0; k < K; ++k) {
    const double* r = &rois[5 * k];
    const double off = aligned ? 0.5 : 0.0;
    const double sw = r[1] * scale - off, sh = r[2] * scale - off;
    double rw = r[3] * scale - off - sw, rh = r[4] * scale - off - sh;
    if (!aligned) { rw = std::max(rw, 1.0); rh = std::max(rh, 1.0); }
    const int64_t gh = sr > 0 ? sr : int64_t(std::ceil(rh / PH)), gw = sr > 0 ? sr : int64_t(std::ceil(rw / PW));
    const double count = std::max<int64_t>(gh * gw, 1);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ph = 0; ph < PH; ++ph)
        for (int64_t pw = 0; pw < PW; ++pw) {
          double acc = 0;
          for (int64_t iy = 0; iy < gh; ++iy)
            for (int64_t ix = 0; ix < gw; ++ix)
              acc += bilinear(&x[(int64_t(r[0]) * C + c) * H * W], H, W, sh + ph * rh / PH + (iy + .5) * rh / PH / gh,
                              sw + pw * rw / PW + (ix + .5) * rw / PW / gw);
          out[((k * C + c) * PH + ph) * PW + pw] = acc / count;
        }
  }
  return out;
}

class RoiAlignPerIsa : public tvops::testing::PerIsa {};

// torchvision's CPU forward in float32, operation for operation (its pre_calc tables
// and summation order), so every tier must match it bit for bit.
std::vector<float> torchvision_f32(const std::vector<float>& x, int64_t C, int64_t H, int64_t W,
                                   const std::vector<float>& rois, float scale, int64_t PH, int64_t PW, int64_t sr,
                                   bool aligned) {
  const int64_t K = int64_t(rois.size() / 5);
  std::vector<float> out(K * C * PH * PW);
  for (int64_t k = 0; k < K; ++k) {
    const float* r = &rois[5 * k];
    const float off = aligned ? 0.5f : 0.f;
    const float sw = r[1] * scale - off, sh = r[2] * scale - off;
    float rw = r[3] * scale - off - sw, rh = r[4] * scale - off - sh;
    if (!aligned) { rw = std::max(rw, 1.f); rh = std::max(rh, 1.f); }
    const float bh = rh / float(PH), bw = rw / float(PW);
    const int64_t gh = sr > 0 ? sr : int64_t(std::ceil(rh / float(PH))), gw = sr > 0 ? sr : int64_t(std::ceil(rw / float(PW)));
    const float count = float(std::max<int64_t>(gh * gw, 1));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ph = 0; ph < PH; ++ph)
        for (int64_t pw = 0; pw < PW; ++pw) {
          const float* plane = &x[(int64_t(r[0]) * C + c) * H * W];
          float acc = 0;
          for (int64_t iy = 0; iy < gh; ++iy) {
            const float y0 = sh + float(ph) * bh + float(iy + .5f) * bh / float(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              float y = y0, xx = sw + float(pw) * bw + float(ix + .5f) * bw / float(gw);
              float w[4] = {0, 0, 0, 0};
              int64_t p[4] = {0, 0, 0, 0};
              if (y >= -1.f && y <= float(H) && xx >= -1.f && xx <= float(W)) {
                y = std::max(y, 0.f);
                xx = std::max(xx, 0.f);
                int64_t yl = int64_t(y), xl = int64_t(xx), yh = yl + 1, xh = xl + 1;
                if (yl >= H - 1) { yl = yh = H - 1; y = float(yl); }
                if (xl >= W - 1) { xl = xh = W - 1; xx = float(xl); }
                const float ly = y - float(yl), lx = xx - float(xl), hy = 1.f - ly, hx = 1.f - lx;
                w[0] = hy * hx, w[1] = hy * lx, w[2] = ly * hx, w[3] = ly * lx;
                p[0] = yl * W + xl, p[1] = yl * W + xh, p[2] = yh * W + xl, p[3] = yh * W + xh;
              }
              acc += w[0] * plane[p[0]] + w[1] * plane[p[1]] + w[2] * plane[p[2]] + w[3] * plane[p[3]];
            }
          }
          out[((k * C + c) * PH + ph) * PW + pw] = acc / count;
        }
  }
  return out;
}

TEST_P(RoiAlignPerIsa, MatchesDoubleReference) {
  const int64_t N = 2, C = 19, H = 13, W = 17;  // C not a multiple of any vector width
  std::mt19937 rng(4);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> pos(-10, 70), size(0, 40);
  std::vector<double> x(N * C * H * W);
  for (double& v : x) v = normal(rng);
  std::vector<double> rois;
  for (int k = 0; k < 40; ++k) {
    const double x1 = pos(rng), y1 = pos(rng);
    rois.insert(rois.end(), {double(k % N), x1, y1, x1 + size(rng), y1 + size(rng)});
  }
  // Degenerate ones: inverted (negative adaptive grids when aligned), empty, far outside.
  rois.insert(rois.end(), {1, 30, 30, 10, 10, 0, 5, 5, 5, 5, 1, 500, 500, 900, 900, 0, -60, -60, -50, -50});
  const int64_t K = int64_t(rois.size() / 5);
  auto tx = tvops::Tensor::from_blob(x.data(), {N, C, H, W}, {}, tvops::DType::Float64, {});
  auto tr = tvops::Tensor::from_blob(rois.data(), {K, 5}, {}, tvops::DType::Float64, {});
  for (bool aligned : {false, true})
    for (int64_t sr : {-1, 2}) {
      tvops::Tensor out = tvops::roi_align(tx, tr, 0.25, 3, 4, sr, aligned);
      auto ref = reference(x, C, H, W, rois, 0.25, 3, 4, sr, aligned);
      ASSERT_EQ(out.numel(), int64_t(ref.size()));
      for (std::size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(out.data<double>()[i], ref[i], 1e-12) << "aligned=" << aligned << " sr=" << sr << " i=" << i;
      // The backward runs over the same RoIs without touching memory it shouldn't.
      std::vector<double> g(out.numel(), 1.0);
      auto tg = tvops::Tensor::from_blob(g.data(), {K, C, 3, 4}, {}, tvops::DType::Float64, {});
      tvops::Tensor gi = tvops::roi_align_backward(tg, tr, 0.25, 3, 4, N, C, H, W, sr, aligned);
      EXPECT_EQ(gi.sizes(), (std::vector<int64_t>{N, C, H, W}));
    }
}

// float16 / bfloat16 maps are read as 16-bit and computed in float32: the result must
// equal the float32 op on the upcast map (the conversions are exact).
TEST_P(RoiAlignPerIsa, HalfMapsGiveTheFloat32ResultOnTheUpcastMap) {
  const int64_t N = 1, C = 37, H = 11, W = 13;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal;
  std::vector<float> x(N * C * H * W);
  for (float& v : x) v = normal(rng);
  std::vector<float> rois = {0, 3, 4, 30, 40, 0, -5, -5, 60, 20, 0, 10, 10, 11, 11};
  auto tx = tvops::Tensor::from_blob(x.data(), {N, C, H, W}, {}, tvops::DType::Float32, {});
  auto tr = tvops::Tensor::from_blob(rois.data(), {3, 5}, {}, tvops::DType::Float32, {});
  for (tvops::DType half : {tvops::DType::Float16, tvops::DType::BFloat16}) {
    tvops::Tensor xh = tx.to(half), rh = tr.to(half);
    tvops::Tensor expected = tvops::roi_align(xh.to(tvops::DType::Float32), rh.to(tvops::DType::Float32), 0.25, 3,
                                              2, -1, true).to(half);
    tvops::Tensor got = tvops::roi_align(xh, rh, 0.25, 3, 2, -1, true);
    ASSERT_EQ(got.dtype(), half);
    // avx512bf16 sums bfloat16 maps with vdpbf16ps in its own order: the float32 result
    // moves by ~1e-5, so its bfloat16 rounding may differ by one unit near a tie.
    const int tolerance = half == tvops::DType::BFloat16 && GetParam() == "avx512bf16" ? 1 : 0;
    for (int64_t i = 0; i < got.numel(); ++i)
      ASSERT_LE(std::abs(int(got.data<uint16_t>()[i]) - int(expected.data<uint16_t>()[i])), tolerance)
          << tvops::dtype_name(half) << " at " << i;
  }
}

// float32 results are bit-identical to torchvision's arithmetic on every tier; this
// is what proves the ARM tiers (NEON, SVE), whose Python parity tests can't run under
// emulation. Channel counts around the vector widths exercise every tail.
TEST_P(RoiAlignPerIsa, Float32BitIdenticalToTorchvisionArithmetic) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> pos(-8, 60), size(0, 30);
  for (int64_t C : {1, 7, 16, 33, 67}) {
    const int64_t N = 2, H = 12, W = 15;
    std::vector<float> x(N * C * H * W), rois;
    for (float& v : x) v = normal(rng);
    for (int k = 0; k < 30; ++k) {
      const float x1 = pos(rng), y1 = pos(rng);
      rois.insert(rois.end(), {float(k % N), x1, y1, x1 + size(rng), y1 + size(rng)});
    }
    auto tx = tvops::Tensor::from_blob(x.data(), {N, C, H, W}, {}, tvops::DType::Float32, {});
    auto tr = tvops::Tensor::from_blob(rois.data(), {30, 5}, {}, tvops::DType::Float32, {});
    for (bool aligned : {false, true})
      for (int64_t sr : {-1, 2}) {
        tvops::Tensor got = tvops::roi_align(tx, tr, 0.25, 3, 4, sr, aligned);
        const std::vector<float> ref = torchvision_f32(x, C, H, W, rois, 0.25f, 3, 4, sr, aligned);
        ASSERT_EQ(got.numel(), int64_t(ref.size()));
        for (std::size_t i = 0; i < ref.size(); ++i)
          ASSERT_EQ(std::memcmp(got.data<float>() + i, &ref[i], 4), 0)
              << "C=" << C << " sr=" << sr << " aligned=" << aligned << " at " << i << ": " << got.data<float>()[i]
              << " vs " << ref[i];
      }
  }
}

TVOPS_INSTANTIATE_PER_ISA(RoiAlignPerIsa);

TEST(RoiAlign, BadBatchIndexIsAnErrorNotAnOutOfBoundsRead) {
  std::vector<float> x(1 * 2 * 4 * 4, 1.f), rois = {3, 0, 0, 2, 2};
  auto tx = tvops::Tensor::from_blob(x.data(), {1, 2, 4, 4}, {}, tvops::DType::Float32, {});
  auto tr = tvops::Tensor::from_blob(rois.data(), {1, 5}, {}, tvops::DType::Float32, {});
  EXPECT_THROW(tvops::roi_align(tx, tr, 1.0, 2, 2, 2, false), tvops::Error);
  EXPECT_THROW(tvops::roi_align_backward(tx, tr, 1.0, 2, 2, 1, 2, 4, 4, 2, false), tvops::Error);
}

}  // namespace
