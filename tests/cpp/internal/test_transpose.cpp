// The NCHW <-> NHWC transposes of kernels/cpu/transpose.cpp (register tiles of 16x16
// floats on AVX-512, 8x8 on AVX2, 2- and 1-byte tiles, plain loops elsewhere), built
// once per vector width, against the definition dst[j * dst_ld + i] = src[i * src_ld + j]:
// sizes that are and aren't multiples of every tile, padded leading dimensions, and
// payloads that must move bit for bit (NaN patterns included).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/transpose.h"

namespace k = tvops::cpu::TVOPS_CPU_TIER;

namespace {

bool cpu_runs_this_test() {
#if defined(__AVX512F__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#elif defined(__AVX2__)
  return __builtin_cpu_supports("avx2");
#else
  return true;
#endif
}

template <typename E>
void check(void (*transpose)(const void*, int64_t, int64_t, int64_t, void*, int64_t)) {
  if (!cpu_runs_this_test()) GTEST_SKIP() << "this CPU lacks the test's vector instructions";
  std::mt19937_64 rng(7);
  for (int64_t rows : {1, 7, 8, 15, 16, 17, 33, 64, 70})
    for (int64_t cols : {1, 5, 8, 16, 31, 48, 130}) {
      const int64_t src_ld = cols + (rows % 3), dst_ld = rows + (cols % 5);  // padded rows, too
      std::vector<E> src(static_cast<std::size_t>(rows * src_ld));
      for (E& v : src) v = static_cast<E>(rng());  // every bit pattern (NaN payloads included)
      const E guard = static_cast<E>(0x5a5a5a5a5a5a5a5aull);
      std::vector<E> dst(static_cast<std::size_t>(cols * dst_ld), guard);
      transpose(src.data(), rows, cols, src_ld, dst.data(), dst_ld);
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t i = 0; i < dst_ld; ++i) {
          const E want = i < rows ? src[i * src_ld + j] : guard;  // the padding stays untouched
          ASSERT_EQ(dst[j * dst_ld + i], want) << "rows " << rows << " cols " << cols << " at (" << j << ", " << i << ")";
        }
    }
}

}  // namespace

TEST(Transpose, FourByteElements) { check<uint32_t>(k::transpose_32); }
TEST(Transpose, TwoByteElements) { check<uint16_t>(k::transpose_16); }
TEST(Transpose, OneByteElements) { check<uint8_t>(k::transpose_8); }
