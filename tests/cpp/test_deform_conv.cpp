// deform_conv2d on every CPU ISA tier (NEON and SVE under qemu in CI) against a plain
// double-precision implementation of torchvision's definition (OPS.md §10): the
// forward and all five gradients, with groups, offset groups, stride, dilation, and
// offsets that throw samples off the map.
#include <gtest/gtest.h>
#include <tvops/tvops.h>

#include "per_isa.h"

#include <cmath>
#include <random>
#include <vector>

namespace {

struct Case {
  int64_t N = 2, Cin = 6, H = 7, W = 9, Cout = 4, kh = 3, kw = 2;
  int64_t sh = 1, sw = 2, ph = 1, pw = 0, dh = 2, dw = 1, groups = 2, og = 3;
  bool mask = true;
  int64_t Ho() const { return (H + 2 * ph - (dh * (kh - 1) + 1)) / sh + 1; }
  int64_t Wo() const { return (W + 2 * pw - (dw * (kw - 1) + 1)) / sw + 1; }
};

// DCN bilinear: zero padding, strict range test.
double bilinear(const double* v, int64_t H, int64_t W, double y, double x) {
  if (y <= -1 || y >= H || x <= -1 || x >= W) return 0;
  const int64_t yl = int64_t(std::floor(y)), xl = int64_t(std::floor(x));
  const double ly = y - yl, lx = x - xl;
  auto at = [&](int64_t yy, int64_t xx) { return yy >= 0 && yy < H && xx >= 0 && xx < W ? v[yy * W + xx] : 0.0; };
  return (1 - ly) * (1 - lx) * at(yl, xl) + (1 - ly) * lx * at(yl, xl + 1) + ly * (1 - lx) * at(yl + 1, xl) +
         ly * lx * at(yl + 1, xl + 1);
}

struct Reference {
  std::vector<double> out, g_in, g_w, g_off, g_mask, g_bias;
};

// Forward and the gradients of sum(out * grad), straight from the definition.
Reference reference(const Case& c, const std::vector<double>& x, const std::vector<double>& w,
                    const std::vector<double>& off, const std::vector<double>& m, const std::vector<double>& bias,
                    const std::vector<double>& grad) {
  const int64_t Ho = c.Ho(), Wo = c.Wo(), taps = c.kh * c.kw, cin_g = c.Cin / c.groups, cout_g = c.Cout / c.groups;
  const int64_t cin_og = c.Cin / c.og;
  Reference r;
  r.out.assign(c.N * c.Cout * Ho * Wo, 0);
  r.g_in.assign(x.size(), 0);
  r.g_w.assign(w.size(), 0);
  r.g_off.assign(off.size(), 0);
  r.g_mask.assign(m.size(), 0);
  r.g_bias.assign(c.Cout, 0);
  for (int64_t b = 0; b < c.N; ++b)
    for (int64_t co = 0; co < c.Cout; ++co)
      for (int64_t oy = 0; oy < Ho; ++oy)
        for (int64_t ox = 0; ox < Wo; ++ox) {
          const int64_t o = ((b * c.Cout + co) * Ho + oy) * Wo + ox;
          const double gout = grad[o];
          double acc = bias[co];
          r.g_bias[co] += gout;
          const int64_t gw = co / cout_g;
          for (int64_t ci = 0; ci < cin_g; ++ci) {
            const int64_t ch = gw * cin_g + ci, g = ch / cin_og;
            const double* plane = &x[(b * c.Cin + ch) * c.H * c.W];
            for (int64_t t = 0; t < taps; ++t) {
              const int64_t i = t / c.kw, j = t % c.kw;
              const int64_t oi = ((b * c.og + g) * taps + t) * 2;
              const double dy = off[(oi * Ho + oy) * Wo + ox], dx = off[((oi + 1) * Ho + oy) * Wo + ox];
              const int64_t mi = (((b * c.og + g) * taps + t) * Ho + oy) * Wo + ox;
              const double mv = c.mask ? m[mi] : 1.0;
              const double y = double(oy * c.sh - c.ph + i * c.dh) + dy, xx = double(ox * c.sw - c.pw + j * c.dw) + dx;
              const double val = bilinear(plane, c.H, c.W, y, xx);
              const int64_t wi = (co * cin_g + ci) * taps + t;
              acc += w[wi] * mv * val;
              // Gradients: the weight, mask, input (bilinear scatter) and offset (coordinate weights).
              const double col_grad = w[wi] * gout;
              r.g_w[wi] += gout * mv * val;
              if (c.mask) r.g_mask[mi] += col_grad * val;
              const int64_t yl = int64_t(std::floor(y)), xl = int64_t(std::floor(xx));
              const double ly = y - yl, lx = xx - xl;
              auto in = [&](int64_t yy, int64_t xq) {
                return yy >= 0 && yy < c.H && xq >= 0 && xq < c.W ? plane[yy * c.W + xq] : 0.0;
              };
              if (y > -1 && y < c.H && xx > -1 && xx < c.W) {
                const int64_t ys[4] = {yl, yl, yl + 1, yl + 1}, xs[4] = {xl, xl + 1, xl, xl + 1};
                const double ws[4] = {(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx};
                for (int q = 0; q < 4; ++q)
                  if (ys[q] >= 0 && ys[q] < c.H && xs[q] >= 0 && xs[q] < c.W)
                    r.g_in[((b * c.Cin + ch) * c.H + ys[q]) * c.W + xs[q]] += mv * ws[q] * col_grad;
              }
              const double gy = lx * (in(yl + 1, xl + 1) - in(yl, xl + 1)) + (1 - lx) * (in(yl + 1, xl) - in(yl, xl));
              const double gx = ly * (in(yl + 1, xl + 1) - in(yl + 1, xl)) + (1 - ly) * (in(yl, xl + 1) - in(yl, xl));
              r.g_off[(oi * Ho + oy) * Wo + ox] += mv * gy * col_grad;
              r.g_off[((oi + 1) * Ho + oy) * Wo + ox] += mv * gx * col_grad;
            }
          }
          r.out[o] = acc;
        }
  return r;
}

template <typename T>
tvops::Tensor make(std::vector<T>& v, std::vector<int64_t> shape) {
  return tvops::Tensor::from_blob(v.data(), std::move(shape), {},
                                  sizeof(T) == 8 ? tvops::DType::Float64 : tvops::DType::Float32, {});
}

template <typename T>
void expect_close(const tvops::Tensor& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.numel(), int64_t(want.size())) << what;
  const T* p = got.data<T>();
  double scale = 1e-3;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(double(p[i]), want[i], tol * scale) << what << " at " << i;
}

// Random inputs of a case in double precision (offsets spread `offset_scale` pixels).
struct Inputs {
  std::vector<double> x, w, off, m, bias, grad;
  Inputs(const Case& c, unsigned seed, double offset_scale) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> uniform(0, 1);
    const int64_t Ho = c.Ho(), Wo = c.Wo(), taps = c.kh * c.kw;
    auto fill = [&](int64_t n, double scale, bool positive = false) {
      std::vector<double> v(n);
      for (double& e : v) e = positive ? uniform(rng) : normal(rng) * scale;
      return v;
    };
    x = fill(c.N * c.Cin * c.H * c.W, 1);
    w = fill(c.Cout * (c.Cin / c.groups) * taps, 1);
    off = fill(c.N * 2 * c.og * taps * Ho * Wo, offset_scale);
    m = fill(c.N * c.og * taps * Ho * Wo, 1, true);
    bias = fill(c.Cout, 1);
    grad = fill(c.N * c.Cout * Ho * Wo, 1);
  }
};

template <typename T>
void check_case(const Case& c, double tol) {
  const int64_t Ho = c.Ho(), Wo = c.Wo(), taps = c.kh * c.kw;
  const Inputs in(c, 42, 2.5);
  const std::vector<double>&x = in.x, &w = in.w, &off = in.off, &m = in.m, &bias = in.bias, &grad = in.grad;
  const Reference r = reference(c, x, w, off, m, bias, grad);
  auto as = [](const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); };
  std::vector<T> tx = as(x), tw = as(w), toff = as(off), tm = as(m), tb = as(bias), tg = as(grad);
  const tvops::Tensor X = make(tx, {c.N, c.Cin, c.H, c.W}), Wt = make(tw, {c.Cout, c.Cin / c.groups, c.kh, c.kw});
  const tvops::Tensor O = make(toff, {c.N, 2 * c.og * taps, Ho, Wo}), M = make(tm, {c.N, c.og * taps, Ho, Wo});
  const tvops::Tensor Bs = make(tb, {c.Cout}), G = make(tg, {c.N, c.Cout, Ho, Wo});
  const tvops::Tensor mask = c.mask ? M : tvops::Tensor();
  const tvops::Tensor out =
      tvops::deform_conv2d(X, Wt, O, mask, Bs, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, c.groups, c.og, c.mask);
  expect_close<T>(out, r.out, tol, "output");
  const auto grads =
      tvops::deform_conv2d_backward(G, X, Wt, O, mask, Bs, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, c.groups, c.og, c.mask);
  expect_close<T>(grads[0], r.g_in, tol, "grad_input");
  expect_close<T>(grads[1], r.g_w, tol, "grad_weight");
  expect_close<T>(grads[2], r.g_off, tol, "grad_offset");
  if (c.mask) expect_close<T>(grads[3], r.g_mask, tol, "grad_mask");
  else EXPECT_FALSE(grads[3].defined());
  expect_close<T>(grads[4], r.g_bias, tol, "grad_bias");
}

class DeformConvPerIsa : public tvops::testing::PerIsa {};

// The int8 path against the double reference: within 5% of the output's magnitude
// (108 products per output, 8-bit activations with one scale per call).
void check_int8(const Case& c) {
  const int64_t Ho = c.Ho(), Wo = c.Wo(), taps = c.kh * c.kw;
  const Inputs in(c, 7, 1.5);
  const Reference r = reference(c, in.x, in.w, in.off, in.m, in.bias, in.grad);
  auto as = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  std::vector<float> tx = as(in.x), tw = as(in.w), toff = as(in.off), tm = as(in.m), tb = as(in.bias);
  const tvops::Tensor out = tvops::deform_conv2d_int8(
      make(tx, {c.N, c.Cin, c.H, c.W}), make(tw, {c.Cout, c.Cin / c.groups, c.kh, c.kw}),
      make(toff, {c.N, 2 * c.og * taps, Ho, Wo}), c.mask ? make(tm, {c.N, c.og * taps, Ho, Wo}) : tvops::Tensor(),
      make(tb, {c.Cout}), c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, c.groups, c.og, c.mask);
  expect_close<float>(out, r.out, 0.05, "int8 output");
}

TEST_P(DeformConvPerIsa, GroupsOffsetGroupsStrideDilation) {
  check_case<double>(Case{}, 1e-12);
  check_case<float>(Case{}, 2e-5);
}

TEST_P(DeformConvPerIsa, WideChannelsCrossGemmBlocks) {
  Case c;
  c.N = 1, c.Cin = 70, c.Cout = 67, c.H = 6, c.W = 5, c.kh = 3, c.kw = 3, c.sw = 1, c.pw = 1, c.dh = 1, c.groups = 1;
  c.og = 2, c.mask = false;
  check_case<double>(c, 1e-12);
  check_case<float>(c, 5e-5);
}

TEST_P(DeformConvPerIsa, Int8CloseToDoubleReference) {
  Case c;
  c.Cin = 24, c.Cout = 16, c.groups = 2, c.og = 2, c.H = 9;
  check_int8(c);
}

TEST_P(DeformConvPerIsa, BadShapesThrow) {
  std::vector<float> x(1 * 4 * 5 * 5), w(4 * 4 * 3 * 3), off(1 * 18 * 5 * 5), bad_off(1 * 17 * 5 * 5);
  const auto X = make(x, {1, 4, 5, 5}), Wt = make(w, {4, 4, 3, 3});
  EXPECT_THROW(tvops::deform_conv2d(X, Wt, make(bad_off, {1, 17, 5, 5}), {}, {}, 1, 1, 1, 1, 1, 1, 1, 1, false),
               tvops::Error);
  EXPECT_THROW(tvops::deform_conv2d(X, Wt, make(off, {1, 18, 5, 5}), {}, {}, 1, 1, 1, 1, 1, 1, 2, 1, false),
               tvops::Error);  // groups: weight.shape[1] * 2 != 4
  EXPECT_THROW(tvops::deform_conv2d(X, Wt, make(off, {1, 18, 5, 5}), {}, {}, 1, 1, 0, 0, 1, 1, 1, 1, false),
               tvops::Error);  // offset spatial size != computed output (3x3)
}

TVOPS_INSTANTIATE_PER_ISA(DeformConvPerIsa);

}  // namespace
