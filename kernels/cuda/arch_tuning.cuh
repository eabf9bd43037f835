// Per-SM-target tuning of every CUDA kernel, in one table (internal). A variant builds
// exactly one SM target; CMake passes it as TVOPS_CUDA_ARCH (the lowest of the list
// when a development build names several), so the row is a compile-time constant:
// block sizes that size shared arrays and __launch_bounds__ stay constexpr.
//
// Rows hold each target's hardware limits (shared memory per block with opt-in, per SM)
// and the kernels' choices. The choices were measured on sm90 (H100/H200: `measured`);
// the other rows take sm90's choices within their own limits, which the static_asserts
// below check, until a GPU of that kind tunes them.
#pragma once

#ifndef TVOPS_CUDA_ARCH
#error "kernels/cuda files are compiled with -DTVOPS_CUDA_ARCH=<sm> (cmake/TvopsLibrary.cmake)"
#endif

namespace tvops::cuda {

struct ArchTuning {
  int sm;                      // compute capability x 10; the row serves sm .. the next row
  int smem_per_block_optin;    // bytes of shared memory a block may opt in to
  int smem_per_sm;             // bytes of shared memory per SM
  int elementwise_threads;     // grid-stride kernels: box ops, sort keys, conversions
  int roi_threads;             // RoI family blocks (8 warps share a RoI's bins)
  int roi_stage_bytes;         // channels-last RoI kernels: [32 channels x bins] staging tile
  int roi_window_bytes;        // roi_align on NCHW maps: shared-memory window of a RoI group's footprint
  int roi_window_channels;     // roi_align on NCHW maps: channels per block (window passes of as many as fit)
  int roi_group_cell;          // roi_align on NCHW maps: RoIs are grouped by the cell (pixels a side) they start in
  int roi_group_max;           // roi_align on NCHW maps: RoIs per group at most
  int roi_window4_bytes;       // roi_align on NCHW maps, float math, 2x2 grids: channel-interleaved window (float4 pixels)
  int nms_pairs_threads;       // nms pair search: one warp per box
  int nms_sweep_rows;          // nms sweep: rows resolved per step (one 64-bit mask word)
  int nms_sweep_threads_per_row;
  int nms_prefetch;            // list entries per thread loaded a step ahead
  int dcn_wide_min_channels;   // deform_conv2d: 128-wide tiles above this many channels a group
  int dcn_widest_min_channels; // deform_conv2d forward: 64 px x 256 output channel tiles (96 KB) above this
  int dcn_weight_blocks_per_sm;  // deform_conv2d weight gradient: blocks per SM to aim for
  bool dcn_wgmma;              // deform_conv2d forward: TF32 products on wgmma (sm90 builds sm_90a for it)
  bool measured;
};

constexpr int kKiB = 1024;
constexpr ArchTuning kArchTable[] = {
    // sm   block opt-in  per SM    elem roi  stage      window (bytes, channels, cell, group, float4 window) pairs rows tpr ahead dcn (wide, widest, wgrad, wgmma) measured
    // (deform_conv2d's 64 x 256 forward tile only where two 96 KB blocks fit an SM)
    {80, 163 * kKiB, 164 * kKiB, 256, 256, 32 * kKiB, 48 * kKiB, 16, 32, 32, 64 * kKiB, 128, 64, 4, 12, 64, 1 << 30, 2, false, false},   // A100, A30
    {86, 99 * kKiB, 100 * kKiB, 256, 256, 32 * kKiB, 48 * kKiB, 16, 32, 32, 64 * kKiB, 128, 64, 4, 12, 64, 1 << 30, 2, false, false},    // RTX 30, A40, A10
    {89, 99 * kKiB, 100 * kKiB, 256, 256, 32 * kKiB, 48 * kKiB, 16, 32, 32, 64 * kKiB, 128, 64, 4, 12, 64, 1 << 30, 2, false, false},    // RTX 40, L40S, L4
    {90, 227 * kKiB, 228 * kKiB, 256, 256, 32 * kKiB, 48 * kKiB, 16, 32, 32, 96 * kKiB, 128, 64, 4, 12, 64, 128, 2, true, true},        // H100, H200
    {100, 227 * kKiB, 228 * kKiB, 256, 256, 32 * kKiB, 48 * kKiB, 16, 32, 32, 96 * kKiB, 128, 64, 4, 12, 64, 128, 2, false, false},      // B200
    {103, 227 * kKiB, 228 * kKiB, 256, 256, 32 * kKiB, 48 * kKiB, 16, 32, 32, 96 * kKiB, 128, 64, 4, 12, 64, 128, 2, false, false},      // B300
    {110, 227 * kKiB, 228 * kKiB, 256, 256, 32 * kKiB, 48 * kKiB, 16, 32, 32, 96 * kKiB, 128, 64, 4, 12, 64, 128, 2, false, false},      // Jetson Thor
    {120, 99 * kKiB, 100 * kKiB, 256, 256, 32 * kKiB, 48 * kKiB, 16, 32, 32, 64 * kKiB, 128, 64, 4, 12, 64, 1 << 30, 2, false, false},   // RTX 50, RTX PRO
    {121, 99 * kKiB, 100 * kKiB, 256, 256, 32 * kKiB, 48 * kKiB, 16, 32, 32, 64 * kKiB, 128, 64, 4, 12, 64, 1 << 30, 2, false, false},   // DGX Spark (GB10)
};

constexpr const ArchTuning& tuning_for(int sm) {
  const ArchTuning* row = &kArchTable[0];
  for (const ArchTuning& t : kArchTable)
    if (sm >= t.sm) row = &t;
  return *row;
}

// The row of this build's SM target.
inline constexpr ArchTuning kTune = tuning_for(TVOPS_CUDA_ARCH);

static_assert(TVOPS_CUDA_ARCH >= 80, "tvops' CUDA kernels need sm80 or newer (mma.sync, cp.async)");
static_assert(kTune.roi_stage_bytes <= 48 * kKiB, "RoI staging must fit without opt-in");
static_assert(kTune.roi_window_bytes + 20 * kKiB <= kTune.smem_per_block_optin, "RoI window and tables fit a block");
static_assert(kTune.roi_window4_bytes + 16 * kKiB <= kTune.smem_per_block_optin, "RoI float4 window and tables fit a block");
static_assert(kTune.roi_threads % 32 == 0 && kTune.roi_threads <= 1024, "RoI blocks are whole warps");
static_assert(kTune.nms_sweep_rows == 64, "the nms sweep resolves one 64-bit mask word per step");
static_assert(kTune.nms_sweep_rows * kTune.nms_sweep_threads_per_row <= 1024, "one sweep block");

}  // namespace tvops::cuda
