// Fills the kernel table for the tier this copy is compiled for (TVOPS_CPU_TIER).
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/tier.h"
#include "kernels/cpu/box_iou.h"
#include "kernels/cpu/deform_conv.h"
#include "kernels/cpu/interleave.h"
#include "kernels/cpu/nms.h"
#include "kernels/cpu/roi_align.h"
#include "kernels/cpu/roi_pool.h"
#include "kernels/cpu/transpose.h"
#include "kernels/cpu/ycc_rgb.h"

namespace tvops::cpu::TVOPS_CPU_TIER {

void fill_kernel_table(KernelTable& table, bool /*base*/) {
  table.isa = TVOPS_CPU_TIER_NAME;
  table.transpose_32 = &transpose_32;
  table.transpose_16 = &transpose_16;
  table.transpose_8 = &transpose_8;
  table.float_to_bfloat16 = &float_to_bfloat16;
  table.deinterleave_u8 = &deinterleave_u8;
  table.deinterleave_u8_stream = &deinterleave_u8_stream;
  table.deinterleave_u16 = &deinterleave_u16;
  table.interleave_u8 = &interleave_u8;
  table.ycc_to_rgb_row = &ycc_to_rgb_row;
  table.nms_sorted_f32 = &nms_sorted<float>;
  table.nms_sorted_f64 = &nms_sorted<double>;
  table.pairwise_box_iou_f32 = &pairwise_box_iou<float>;
  table.pairwise_box_iou_f64 = &pairwise_box_iou<double>;
  table.roi_align_forward_f32 = &roi_align_forward<float>;
  table.roi_align_forward_f64 = &roi_align_forward<double>;
  table.roi_align_forward_half = &roi_align_forward_half;
  table.roi_align_forward_u8 = &roi_align_forward_u8;
  table.roi_align_backward_f32 = &roi_align_backward<float>;
  table.roi_align_backward_f64 = &roi_align_backward<double>;
  table.roi_pool_forward_f32 = &roi_pool_forward<float>;
  table.roi_pool_forward_f64 = &roi_pool_forward<double>;
  table.roi_pool_backward_f32 = &roi_pool_backward<float>;
  table.roi_pool_backward_f64 = &roi_pool_backward<double>;
  table.ps_roi_align_forward_f32 = &ps_roi_align_forward<float>;
  table.ps_roi_align_forward_f64 = &ps_roi_align_forward<double>;
  table.ps_roi_align_backward_f32 = &ps_roi_align_backward<float>;
  table.ps_roi_align_backward_f64 = &ps_roi_align_backward<double>;
  table.ps_roi_pool_forward_f32 = &ps_roi_pool_forward<float>;
  table.ps_roi_pool_forward_f64 = &ps_roi_pool_forward<double>;
  table.ps_roi_pool_backward_f32 = &ps_roi_pool_backward<float>;
  table.ps_roi_pool_backward_f64 = &ps_roi_pool_backward<double>;
  table.deform_conv_forward_f32 = &deform_conv_forward<float>;
  table.deform_conv_forward_f64 = &deform_conv_forward<double>;
  table.deform_conv_backward_f32 = &deform_conv_backward<float>;
  table.deform_conv_backward_f64 = &deform_conv_backward<double>;
  table.deform_conv_forward_u8 = &deform_conv_forward_u8;
#if defined(__AVX512BF16__)
  table.deform_conv_forward_bf16 = &deform_conv_forward_bf16;
#endif
}

}  // namespace tvops::cpu::TVOPS_CPU_TIER
