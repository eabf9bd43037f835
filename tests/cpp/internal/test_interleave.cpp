// The codecs' row layout kernels (kernels/cpu/interleave.cpp) against a scalar
// reference, at every length around the vector widths. Built here with the host's
// vector unit (SSSE3 on x86, NEON on aarch64, under qemu in the ARM presets), which
// the codec tests can't reach in builds without libjpeg and libpng.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/interleave.h"

namespace k = tvops::cpu::TVOPS_CPU_TIER;

TEST(Interleave, RowsMatchScalarReference) {
  for (int channels = 1; channels <= 4; ++channels) {
    for (int64_t n : {0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 100, 1921}) {
      std::vector<uint8_t> src(static_cast<std::size_t>(n * channels) + 1);
      for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 37 + 11);
      std::vector<std::vector<uint8_t>> planes(4, std::vector<uint8_t>(static_cast<std::size_t>(n) + 1, 0xAA));
      uint8_t* p[4] = {planes[0].data(), planes[1].data(), planes[2].data(), planes[3].data()};
      for (bool stream : {false, true}) {
        (stream ? k::deinterleave_u8_stream : k::deinterleave_u8)(src.data(), n, channels, p);
        for (int c = 0; c < channels; ++c) {
          for (int64_t i = 0; i < n; ++i) ASSERT_EQ(planes[c][i], src[i * channels + c]) << channels << " " << n;
          ASSERT_EQ(planes[c][n], 0xAA) << "wrote past the row";
        }
      }
      // Aligned planes: the non-temporal path.
      std::vector<uint8_t> block(static_cast<std::size_t>(4 * (n + 64) + 64));
      uint8_t* base = block.data() + (16 - reinterpret_cast<uintptr_t>(block.data()) % 16) % 16;
      uint8_t* a[4];
      for (int c = 0; c < 4; ++c) a[c] = base + c * ((n + 15) / 16 * 16 + 16);
      k::deinterleave_u8_stream(src.data(), n, channels, a);
      for (int c = 0; c < channels; ++c)
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(a[c][i], src[i * channels + c]) << "stream " << channels << " " << n;
      std::vector<uint8_t> back(static_cast<std::size_t>(n * channels) + 1, 0x55);
      const uint8_t* q[4] = {p[0], p[1], p[2], p[3]};
      k::interleave_u8(q, n, channels, back.data());
      for (int64_t i = 0; i < n * channels; ++i) ASSERT_EQ(back[i], src[i]) << channels << " " << n;
      ASSERT_EQ(back[n * channels], 0x55);

      std::vector<uint16_t> wide(static_cast<std::size_t>(n * channels));
      for (std::size_t i = 0; i < wide.size(); ++i) wide[i] = static_cast<uint16_t>(i * 2654435761u);
      std::vector<std::vector<uint16_t>> wp(4, std::vector<uint16_t>(static_cast<std::size_t>(n)));
      uint16_t* w[4] = {wp[0].data(), wp[1].data(), wp[2].data(), wp[3].data()};
      k::deinterleave_u16(wide.data(), n, channels, w);
      for (int c = 0; c < channels; ++c)
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(wp[c][i], wide[i * channels + c]);
    }
  }
}
