// CPU RoI pooling kernels of one ISA tier (see tier.h): roi_pool (max, channels-last
// forward) and the position-sensitive ps_roi_align / ps_roi_pool (NCHW).
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/tier.h"

namespace tvops::cpu::TVOPS_CPU_TIER {

// out and argmax [K, C, PH, PW] for RoIs order[roi_begin..roi_end); input is NHWC.
template <typename T>
void roi_pool_forward(const RoiArgs<T>& a, const T* input_nhwc, int64_t roi_begin, int64_t roi_end, T* out,
                      int32_t* argmax);
// grad_input (NCHW, zeroed) += grad routed through argmax, channels [c_begin, c_end).
// Returns false if an argmax value is outside [-1, H*W) (those are skipped).
template <typename T>
bool roi_pool_backward(const RoiArgs<T>& a, const T* grad, const int32_t* argmax, int64_t c_begin, int64_t c_end,
                       T* grad_input);

// Position-sensitive ops: out [K, C/(PH*PW), PH, PW] for RoIs [roi_begin, roi_end); input NCHW.
template <typename T>
void ps_roi_align_forward(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end, T* out);
template <typename T>
void ps_roi_align_backward(const RoiArgs<T>& a, const T* grad, int64_t cout_begin, int64_t cout_end,
                           T* grad_input);
template <typename T>
void ps_roi_pool_forward(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end, T* out);
template <typename T>
void ps_roi_pool_backward(const RoiArgs<T>& a, const T* grad, int64_t cout_begin, int64_t cout_end,
                          T* grad_input);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
