// The table of CPU kernels one ISA tier provides. Each file in kernels/cpu/ is
// compiled once per tier inside namespace tvops::cpu::<tier>; the tier's
// register.cpp fills this table, and csrc/dispatch/cpu_isa.cpp picks a table at
// run time. Only plain function pointers cross tiers: no templates, no statics.
#pragma once

#include <cstdint>

#include "ops/deform_conv2d_shape.h"

namespace tvops::cpu {

// Greedy NMS over boxes already in score order. boxes: [n, 4] contiguous
// (x1, y1, x2, y2), row r = the r-th highest score. Writes 1 to keep[r] for kept
// rows, 0 otherwise. threshold is torchvision's double iou_threshold.
using NmsSortedF32 = void (*)(const float* boxes, int64_t n, double threshold, uint8_t* keep);
using NmsSortedF64 = void (*)(const double* boxes, int64_t n, double threshold, uint8_t* keep);

// A set of boxes in structure-of-arrays form, with what the formulas need
// per box precomputed (so the pairwise loop is pure arithmetic).
template <typename T>
struct BoxSoA {
  const T *x1, *y1, *x2, *y2, *area;
  const T *cx, *cy;      // centres (distance and complete IoU)
  const T *atan_ratio;   // atan(w / h) (complete IoU)
};

// Pairwise IoU family; see kernels/cpu/box_iou.h.
template <typename T>
using PairwiseBoxIou = void (*)(const BoxSoA<T>& a, int64_t row_begin, int64_t row_end, const BoxSoA<T>& b,
                                int64_t m, int kind, T eps, T* out);

// roi_align geometry; see kernels/cpu/roi_align.h.
template <typename T>
struct RoiArgs {
  const T* rois;  // [num_rois, 5]: batch index, x1, y1, x2, y2
  const int64_t* order;  // forward kernels visit rois order[roi_begin..roi_end) (spatially sorted)
  int64_t num_rois, channels, height, width, pooled_height, pooled_width, sampling_ratio;
  T spatial_scale;
  bool aligned;
};
template <typename T>
using RoiAlignForward = void (*)(const RoiArgs<T>& a, const T* input_nhwc, int64_t roi_begin, int64_t roi_end,
                                 T* out);
using RoiAlignForwardHalf = void (*)(const RoiArgs<float>& a, const uint16_t* input_nhwc, bool bf16,
                                     int64_t roi_begin, int64_t roi_end, float* out);
// quint8 roi_align: the map's integer values and zero point in, quantized values at
// the input's scale out; see roi_align.h.
using RoiAlignForwardU8 = void (*)(const RoiArgs<float>& a, const uint8_t* input_nhwc, int32_t zero_point,
                                   int64_t roi_begin, int64_t roi_end, uint8_t* out);
template <typename T>
using RoiAlignBackward = void (*)(const RoiArgs<T>& a, const T* grad, int64_t c_begin, int64_t c_end,
                                  T* grad_input_nhwc);

template <typename T>
using RoiPoolForward = void (*)(const RoiArgs<T>& a, const T* input_nhwc, int64_t roi_begin, int64_t roi_end,
                                T* out, int32_t* argmax);
template <typename T>
using RoiPoolBackward = bool (*)(const RoiArgs<T>& a, const T* grad, const int32_t* argmax, int64_t c_begin,
                                 int64_t c_end, T* grad_input);
// Position-sensitive forward over RoIs / backward over output-channel ranges (NCHW).
template <typename T>
using PsRoiForward = void (*)(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end, T* out);
template <typename T>
using PsRoiBackward = void (*)(const RoiArgs<T>& a, const T* grad, int64_t cout_begin, int64_t cout_end,
                               T* grad_input);

// deform_conv2d as an implicit GEMM over tiles of output pixels; see deform_conv.h.
// Weights arrive packed by the front-end (csrc/ops/deform_conv2d.cpp), in blocks of
// kDeformBlock(T) = 256 bytes of output (forward) or k (backward) columns.
constexpr int64_t kDeformTilePixels = 64;  // output pixels of one image per tile
constexpr int64_t kDeformBlockBytes = 256;
template <typename T>
struct DeformConvArgs {
  DeformConvShape s;
  const T* input;      // NHWC [N, H, W, Cin]
  const T* offset;     // [N, 2 * G * taps, Ho, Wo]
  const T* mask;       // [N, G * taps, Ho, Wo], or null without use_mask
  // Per weight group: [ceil(Cout_g / B)][Kp][B] with k = tap * Cin_g + c, zero beyond
  // K_g = taps * Cin_g (Kp: K_g rounded up to B) and beyond Cout_g; B = 256 / sizeof(T).
  const T* weight;
  // The transpose, for the backward's columns gradient: per group [Kp / B][Cout_g][B].
  const T* weight_t;
  const T* bias;       // [Cout] or null
};
// The bfloat16 forward of the avx512bf16 tier (vdpbf16ps, float32 accumulation): the
// NHWC input in bfloat16, columns rounded to bfloat16, weights as k pairs per group
// [ceil(Cout_g / 64)][Kp / 2][64][2] (Kp: K rounded up to 64); the rest float32.
struct DeformConvArgsBf16 {
  DeformConvShape s;
  const uint16_t* input;
  const float* offset;
  const float* mask;
  const uint16_t* weight;
  const float* bias;
};
// Writes bfloat16 out [N, Cout, Ho, Wo] (the float32 sums rounded once, bias added first).
using DeformConvForwardBf16 = void (*)(const DeformConvArgsBf16& a, int64_t tile_begin, int64_t tile_end,
                                       uint16_t* out);
// The int8 inference path (every tier; vpdpbusd on avx512vnni): columns sampled in
// float32 from the float32 NHWC input and quantized to u8 = round(v * act_inv_scale) +
// 128, weights symmetric s8 per output channel packed as k quads per group
// [ceil(Cout_g / 64)][Kp / 4][64][4]; out = (sum - zero_sums[co]) * out_scale[co] + bias.
struct DeformConvArgsU8 {
  DeformConvShape s;
  const float* input;
  const float* offset;
  const float* mask;
  const int8_t* weight;
  const int32_t* zero_sums;  // [Cout]: 128 * sum_k weight[co][k]
  const float* out_scale;    // [Cout]: activation scale * weight scale[co]
  const float* bias;
  float act_inv_scale;
};
using DeformConvForwardU8 = void (*)(const DeformConvArgsU8& a, int64_t tile_begin, int64_t tile_end, float* out);
// out [N, Cout, Ho, Wo] for tiles [tile_begin, tile_end) of all images (tile t: image
// t / tiles_per_image, pixels from (t % tiles_per_image) * kDeformTilePixels).
template <typename T>
using DeformConvForward = void (*)(const DeformConvArgs<T>& a, int64_t tile_begin, int64_t tile_end, T* out);
// Gradients from grad [N, Cout, Ho, Wo] for tiles [tile_begin, tile_end) of one image:
// grad_input_nhwc [H, W, Cin] and grad_weight (the packed forward layout) are the
// caller's per-thread accumulators; grad_offset and grad_mask (zeroed, [N, ...]) get
// the tiles' own pixels.
template <typename T>
using DeformConvBackward = void (*)(const DeformConvArgs<T>& a, const T* grad, int64_t image, int64_t tile_begin,
                                    int64_t tile_end, T* grad_input_nhwc, T* grad_weight, T* grad_offset,
                                    T* grad_mask);

// dst[j * dst_ld + i] = src[i * src_ld + j] for 4-byte elements; see transpose.h.
// (transpose_16, transpose_8: the same for 2-byte and 1-byte elements.)
using Transpose = void (*)(const void* src, int64_t rows, int64_t cols, int64_t src_ld, void* dst, int64_t dst_ld);

// float32 -> bfloat16 bits (round to nearest even); see transpose.h.
using FloatToBf16 = void (*)(const float* in, int64_t n, uint16_t* out);

// Image rows: interleaved pixels <-> channel planes; see interleave.h.
using DeinterleaveU8 = void (*)(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes);
using DeinterleaveU16 = void (*)(const uint16_t* src, int64_t n, int channels, uint16_t* const* planes);
using InterleaveU8 = void (*)(const uint8_t* const* planes, int64_t n, int channels, uint8_t* dst);

enum class ChromaSampling : int {
  Full = 0,  // 4:4:4
  H2 = 1,    // 4:2:2: chroma rows at half width
  H2V2 = 2,  // 4:2:0: half width, half height
};

// One output row and the chroma rows it is made from, as libjpeg's raw output gives them.
struct YccRow {
  const uint8_t* y;                   // width samples
  const uint8_t* cb;                  // the chroma rows nearest the output row
  const uint8_t* cr;
  const uint8_t* cb_far = nullptr;    // H2V2: the chroma rows on its other side (weight 1
  const uint8_t* cr_far = nullptr;    //   of 4; libjpeg repeats the edge rows)
  int64_t width = 0;                  // output pixels
  int64_t chroma_width = 0;           // H2, H2V2: samples per chroma row, ceil(width / 2) >= 2
  ChromaSampling sampling = ChromaSampling::Full;
};

// Scratch ycc_to_rgb_row needs (16-bit values).
inline int64_t ycc_scratch_size(int64_t chroma_width) { return 2 * (chroma_width + 2); }

// A YCbCr JPEG's chroma upsampling and RGB conversion, as libjpeg; see ycc_rgb.h.
using YccToRgbRow = void (*)(const YccRow& row, uint8_t* const* planes, bool stream, uint16_t* scratch);

struct KernelTable {
  const char* isa = nullptr;  // the tier that filled the last entry
  Transpose transpose_32 = nullptr, transpose_16 = nullptr, transpose_8 = nullptr;
  FloatToBf16 float_to_bfloat16 = nullptr;
  DeinterleaveU8 deinterleave_u8 = nullptr, deinterleave_u8_stream = nullptr;
  DeinterleaveU16 deinterleave_u16 = nullptr;
  InterleaveU8 interleave_u8 = nullptr;
  YccToRgbRow ycc_to_rgb_row = nullptr;
  NmsSortedF32 nms_sorted_f32 = nullptr;
  NmsSortedF64 nms_sorted_f64 = nullptr;
  PairwiseBoxIou<float> pairwise_box_iou_f32 = nullptr;
  PairwiseBoxIou<double> pairwise_box_iou_f64 = nullptr;
  RoiAlignForward<float> roi_align_forward_f32 = nullptr;
  RoiAlignForward<double> roi_align_forward_f64 = nullptr;
  RoiAlignForwardHalf roi_align_forward_half = nullptr;
  RoiAlignForwardU8 roi_align_forward_u8 = nullptr;
  RoiAlignBackward<float> roi_align_backward_f32 = nullptr;
  RoiAlignBackward<double> roi_align_backward_f64 = nullptr;
  RoiPoolForward<float> roi_pool_forward_f32 = nullptr;
  RoiPoolForward<double> roi_pool_forward_f64 = nullptr;
  RoiPoolBackward<float> roi_pool_backward_f32 = nullptr;
  RoiPoolBackward<double> roi_pool_backward_f64 = nullptr;
  PsRoiForward<float> ps_roi_align_forward_f32 = nullptr, ps_roi_pool_forward_f32 = nullptr;
  PsRoiForward<double> ps_roi_align_forward_f64 = nullptr, ps_roi_pool_forward_f64 = nullptr;
  PsRoiBackward<float> ps_roi_align_backward_f32 = nullptr, ps_roi_pool_backward_f32 = nullptr;
  PsRoiBackward<double> ps_roi_align_backward_f64 = nullptr, ps_roi_pool_backward_f64 = nullptr;
  DeformConvForward<float> deform_conv_forward_f32 = nullptr;
  DeformConvForward<double> deform_conv_forward_f64 = nullptr;
  DeformConvBackward<float> deform_conv_backward_f32 = nullptr;
  DeformConvBackward<double> deform_conv_backward_f64 = nullptr;
  DeformConvForwardBf16 deform_conv_forward_bf16 = nullptr;  // avx512bf16 only
  DeformConvForwardU8 deform_conv_forward_u8 = nullptr;
};

}  // namespace tvops::cpu

// Declares tvops::cpu::<tier>::fill_kernel_table for a tier. `base` is true for the
// lowest compiled tier, which must fill every entry; wider tiers fill only the
// kernels where a benchmark shows they beat the narrower tier (opt-in, like ATen's
// AVX-512 policy).
#define TVOPS_DECLARE_CPU_TIER(ns, name, parent) \
  namespace tvops::cpu::ns { void fill_kernel_table(KernelTable& table, bool base); }
