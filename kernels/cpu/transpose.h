// Matrix transposes of 4-, 2- and 1-byte elements, and the bfloat16 downcast (tier namespace): the NCHW <-> NHWC copies of
// the RoI ops. A scalar copy runs at a third of memory speed; 16x16 register tiles
// (AVX-512) or 8x8 (AVX2) keep both the reads and the writes in whole cache lines.
#pragma once

#include <cstdint>

#include "kernels/cpu/tier.h"

namespace tvops::cpu::TVOPS_CPU_TIER {

// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols. Walks row tiles
// outermost: callers pass blocks whose column range fits in cache.
// Elements move as 4-byte payloads, so NaN bit patterns survive.
void transpose_32(const void* src, int64_t rows, int64_t cols, int64_t src_ld, void* dst, int64_t dst_ld);
// The same for 16-bit elements (half maps) and bytes (quantized maps).
void transpose_16(const void* src, int64_t rows, int64_t cols, int64_t src_ld, void* dst, int64_t dst_ld);
void transpose_8(const void* src, int64_t rows, int64_t cols, int64_t src_ld, void* dst, int64_t dst_ld);

// float32 -> bfloat16, round to nearest even, NaN kept quiet: the same bits as
// core/half.h's float_to_bfloat16, a vector at a time (the RoI ops' half outputs).
void float_to_bfloat16(const float* in, int64_t n, uint16_t* out);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
