// CPU deform_conv2d kernels of one ISA tier (see tier.h): an implicit GEMM. A tile of
// output pixels samples its offset-shifted patches from the channels-last input into a
// small column block ([pixels][k], a few hundred k at a time, in L2) and multiplies it
// with the packed weights right away; no im2col buffer of the whole batch exists.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/tier.h"

namespace tvops::cpu::TVOPS_CPU_TIER {

// out [N, Cout, Ho, Wo] for tiles [tile_begin, tile_end); see DeformConvForward.
template <typename T>
void deform_conv_forward(const DeformConvArgs<T>& a, int64_t tile_begin, int64_t tile_end, T* out);

// Gradients of tiles [tile_begin, tile_end) of one image; see DeformConvBackward.
// The columns' gradient (W^T grad) of a tile is made block by block and used at once
// for the input (bilinear scatter), offset (coordinate weights, torchvision's formula
// without the whole-point range test) and mask gradients; the weight gradient is the
// product of the tile's grad and its re-sampled columns.
template <typename T>
void deform_conv_backward(const DeformConvArgs<T>& a, const T* grad, int64_t image, int64_t tile_begin,
                          int64_t tile_end, T* grad_input_nhwc, T* grad_weight, T* grad_offset, T* grad_mask);

// int8 inference (kernel_table.h DeformConvArgsU8): integer sums are exact, so every
// tier returns the same floats; avx512vnni multiplies four k per vpdpbusd.
void deform_conv_forward_u8(const DeformConvArgsU8& a, int64_t tile_begin, int64_t tile_end, float* out);

#if defined(__AVX512BF16__)
// bfloat16 inputs: the column block is rounded to bfloat16 once (the bilinear sum is
// float32) and multiplied by vdpbf16ps, two k per instruction, into float32 sums.
void deform_conv_forward_bf16(const DeformConvArgsBf16& a, int64_t tile_begin, int64_t tile_end, uint16_t* out);
#endif

}  // namespace tvops::cpu::TVOPS_CPU_TIER
