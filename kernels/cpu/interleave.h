// Pixel layout conversions of the image codecs (tier namespace): one row of
// interleaved pixels (HWC, what libjpeg and libpng produce and consume) to or from
// C channel planes (CHW, what tvops returns). Decoders call these on a row still in
// L1, so a CHW result costs no extra pass over the image.
#pragma once

#include <cstdint>

#include "kernels/cpu/tier.h"

namespace tvops::cpu::TVOPS_CPU_TIER {

// planes[c][i] = src[i * channels + c] for i < n, c < channels (1..4).
void deinterleave_u8(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes);
// The same with non-temporal stores where the planes are 16-byte aligned (x86), for
// outputs larger than the caches; the caller issues a store fence before handing
// the planes to another thread.
void deinterleave_u8_stream(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes);
void deinterleave_u16(const uint16_t* src, int64_t n, int channels, uint16_t* const* planes);
// dst[i * channels + c] = planes[c][i] (the encoders' direction).
void interleave_u8(const uint8_t* const* planes, int64_t n, int channels, uint8_t* dst);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
