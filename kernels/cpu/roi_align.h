// CPU roi_align kernels of one ISA tier (see tier.h). Feature maps are channels-last
// (NHWC) inside: each bilinear tap is a contiguous run of channels.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/tier.h"

namespace tvops::cpu::TVOPS_CPU_TIER {

// out [K, C, PH, PW] for RoIs [roi_begin, roi_end) of rois [K, 5]; input is NHWC.
template <typename T>
void roi_align_forward(const RoiArgs<T>& a, const T* input_nhwc, int64_t roi_begin, int64_t roi_end, T* out);

// The same on a float16 (bf16 = false) or bfloat16 NHWC map, computing in float32.
void roi_align_forward_half(const RoiArgs<float>& a, const uint16_t* input_nhwc, bool bf16, int64_t roi_begin,
                            int64_t roi_end, float* out);

// quint8 maps (torchvision's quantized roi_align): out = zero_point + round(the
// average of the samples' (value - zero_point)), at the input's scale. Bilinear
// weights are 14-bit integers summing exactly to 1, so the accumulation is integer
// (on avx512vnni the four taps of a sample are u8 x s8 dot products, vpdpbusd) and
// every tier gives the same bytes; they differ from torchvision's float arithmetic by
// at most one quantum, where a value sits on a rounding boundary.
void roi_align_forward_u8(const RoiArgs<float>& a, const uint8_t* input_nhwc, int32_t zero_point, int64_t roi_begin,
                          int64_t roi_end, uint8_t* out);

// grad_input_nhwc (zeroed by the caller) += the gradient of grad [K, C, PH, PW] for
// channels [c_begin, c_end). Contributions reach each element in torchvision's CPU
// order (RoI, ph, pw, iy, ix, corner), so the sum is the same as its serial loop.
template <typename T>
void roi_align_backward(const RoiArgs<T>& a, const T* grad, int64_t c_begin, int64_t c_end,
                        T* grad_input_nhwc);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
