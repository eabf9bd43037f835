// The JPEG colour kernels (kernels/cpu/ycc_rgb.cpp) against libjpeg's C definitions,
// written out here independently: jdcolor.c's lookup tables built from FIX() in double
// precision, and jdsample.c's h2v1 / h2v2 fancy upsampling loops with their special
// first and last columns. Compiled once per vector width (TVOPS_YCC_TEST_ISA: the
// scalar code, AVX2, AVX-512BW; NEON / scalar under qemu in the ARM presets).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/ycc_rgb.h"

namespace k = tvops::cpu::TVOPS_CPU_TIER;

namespace {

bool cpu_runs_this_test() {
#if defined(__AVX512BW__)
  return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f");
#elif defined(__AVX2__)
  return __builtin_cpu_supports("avx2");
#else
  return true;
#endif
}

// jdcolor.c: build_ycc_rgb_table.
struct Tables {
  int cr_r[256], cb_b[256];
  long cr_g[256], cb_g[256];
  Tables() {
    auto fix = [](double x) { return static_cast<long>(x * 65536.0 + 0.5); };
    for (int i = 0; i < 256; ++i) {
      const long x = i - 128;
      cr_r[i] = static_cast<int>((fix(1.40200) * x + 32768) >> 16);
      cb_b[i] = static_cast<int>((fix(1.77200) * x + 32768) >> 16);
      cr_g[i] = -fix(0.71414) * x;
      cb_g[i] = -fix(0.34414) * x + 32768;
    }
  }
};

uint8_t limit(long v) { return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v); }

// jdsample.c: h2v1_fancy_upsample / h2v2_fancy_upsample for one output row.
std::vector<uint8_t> fancy_reference(const uint8_t* near, const uint8_t* far, int64_t w, bool v2) {
  std::vector<uint8_t> out(static_cast<std::size_t>(2 * w));
  if (!v2) {
    out[0] = near[0];
    out[1] = static_cast<uint8_t>((near[0] * 3 + near[1] + 2) >> 2);
    for (int64_t j = 1; j < w - 1; ++j) {
      out[2 * j] = static_cast<uint8_t>((near[j] * 3 + near[j - 1] + 1) >> 2);
      out[2 * j + 1] = static_cast<uint8_t>((near[j] * 3 + near[j + 1] + 2) >> 2);
    }
    out[2 * w - 2] = static_cast<uint8_t>((near[w - 1] * 3 + near[w - 2] + 1) >> 2);
    out[2 * w - 1] = near[w - 1];
    return out;
  }
  auto sum = [&](int64_t j) { return near[j] * 3 + far[j]; };
  out[0] = static_cast<uint8_t>((sum(0) * 4 + 8) >> 4);
  out[1] = static_cast<uint8_t>((sum(0) * 3 + sum(1) + 7) >> 4);
  for (int64_t j = 1; j < w - 1; ++j) {
    out[2 * j] = static_cast<uint8_t>((sum(j) * 3 + sum(j - 1) + 8) >> 4);
    out[2 * j + 1] = static_cast<uint8_t>((sum(j) * 3 + sum(j + 1) + 7) >> 4);
  }
  out[2 * w - 2] = static_cast<uint8_t>((sum(w - 1) * 3 + sum(w - 2) + 8) >> 4);
  out[2 * w - 1] = static_cast<uint8_t>((sum(w - 1) * 4 + 7) >> 4);
  return out;
}

}  // namespace

TEST(YccRgb, EveryColourMatchesLibjpegTables) {
  if (!cpu_runs_this_test()) GTEST_SKIP() << "this CPU lacks the vector unit this copy was built for";
  const Tables t;
  // Every (Cb, Cr) pair, with Y stepping through all values across rows.
  const int64_t n = 256 * 256;
  std::vector<uint8_t> y(n), cb(n), cr(n), r(n + 1, 0xAA), g(n + 1, 0xAA), b(n + 1, 0xAA);
  for (int shift = 0; shift < 256; shift += 17) {
    for (int64_t i = 0; i < n; ++i) {
      cb[i] = static_cast<uint8_t>(i & 255);
      cr[i] = static_cast<uint8_t>(i >> 8);
      y[i] = static_cast<uint8_t>((i * 7 + shift) & 255);
    }
    uint8_t* planes[3] = {r.data(), g.data(), b.data()};
    tvops::cpu::YccRow row{y.data(), cb.data(), cr.data()};
    row.width = n;
    k::ycc_to_rgb_row(row, planes, shift % 2 == 1, nullptr);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(r[i], limit(y[i] + t.cr_r[cr[i]])) << "R at " << i;
      ASSERT_EQ(g[i], limit(y[i] + ((t.cb_g[cb[i]] + t.cr_g[cr[i]]) >> 16))) << "G at " << i;
      ASSERT_EQ(b[i], limit(y[i] + t.cb_b[cb[i]])) << "B at " << i;
    }
    ASSERT_EQ(r[n], 0xAA);
    ASSERT_EQ(g[n], 0xAA);
    ASSERT_EQ(b[n], 0xAA);
  }
}

TEST(YccRgb, RowLengthsAroundVectorWidths) {
  if (!cpu_runs_this_test()) GTEST_SKIP() << "this CPU lacks the vector unit this copy was built for";
  const Tables t;
  std::mt19937 rng(7);
  for (int64_t n : {1, 15, 16, 31, 32, 33, 63, 64, 65, 127, 129, 1920, 1921}) {
    std::vector<uint8_t> y(n), cb(n), cr(n);
    for (int64_t i = 0; i < n; ++i) y[i] = rng() & 255, cb[i] = rng() & 255, cr[i] = rng() & 255;
    std::vector<uint8_t> block(3 * (n + 128) + 64, 0xAA);
    uint8_t* base = block.data() + (64 - reinterpret_cast<uintptr_t>(block.data()) % 64) % 64;
    const int64_t pitch = (n + 63) / 64 * 64 + 64;
    uint8_t* planes[3] = {base, base + pitch, base + 2 * pitch};
    for (bool stream : {false, true}) {
      tvops::cpu::YccRow row{y.data(), cb.data(), cr.data()};
      row.width = n;
      k::ycc_to_rgb_row(row, planes, stream, nullptr);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(planes[0][i], limit(y[i] + t.cr_r[cr[i]])) << n;
        ASSERT_EQ(planes[2][i], limit(y[i] + t.cb_b[cb[i]])) << n;
      }
      for (int c = 0; c < 3; ++c) ASSERT_EQ(planes[c][n], 0xAA) << "wrote past the row";
    }
  }
}

TEST(YccRgb, SubsampledRowsMatchLibjpegUpsamplingAndTables) {
  if (!cpu_runs_this_test()) GTEST_SKIP() << "this CPU lacks the vector unit this copy was built for";
  const Tables t;
  std::mt19937 rng(11);
  for (bool v2 : {false, true}) {
    for (int64_t w : {2, 3, 15, 16, 17, 31, 32, 33, 47, 64, 65, 100, 960, 961}) {
      std::vector<uint8_t> cb(w), cr(w), cb_far(w), cr_far(w);
      for (int64_t j = 0; j < w; ++j)
        cb[j] = rng() & 255, cr[j] = rng() & 255, cb_far[j] = rng() & 255, cr_far[j] = rng() & 255;
      cb[w / 2] = 255, cb_far[w / 2] = 0, cr[w - 1] = 0, cr_far[w - 1] = 255;  // extremes
      const std::vector<uint8_t> ub = fancy_reference(cb.data(), cb_far.data(), w, v2);
      const std::vector<uint8_t> ur = fancy_reference(cr.data(), cr_far.data(), w, v2);
      for (int64_t n : {2 * w - 1, 2 * w}) {  // odd image widths drop the last upsampled column
        std::vector<uint8_t> y(n);
        for (int64_t i = 0; i < n; ++i) y[i] = rng() & 255;
        std::vector<std::vector<uint8_t>> planes(3, std::vector<uint8_t>(n + 1, 0xAA));
        uint8_t* p[3] = {planes[0].data(), planes[1].data(), planes[2].data()};
        std::vector<uint16_t> scratch(tvops::cpu::ycc_scratch_size(w));
        tvops::cpu::YccRow row{y.data(), cb.data(), cr.data(), cb_far.data(), cr_far.data(), n, w,
                      v2 ? tvops::cpu::ChromaSampling::H2V2 : tvops::cpu::ChromaSampling::H2};
        k::ycc_to_rgb_row(row, p, false, scratch.data());
        for (int64_t i = 0; i < n; ++i) {
          const std::string where = "v2 " + std::to_string(v2) + " width " + std::to_string(n) + " at " +
                                    std::to_string(i);
          ASSERT_EQ(p[0][i], limit(y[i] + t.cr_r[ur[i]])) << where;
          ASSERT_EQ(p[1][i], limit(y[i] + ((t.cb_g[ub[i]] + t.cr_g[ur[i]]) >> 16))) << where;
          ASSERT_EQ(p[2][i], limit(y[i] + t.cb_b[ub[i]])) << where;
        }
        for (int c = 0; c < 3; ++c) ASSERT_EQ(p[c][n], 0xAA) << "wrote past the row";
      }
    }
  }
}
