// The geometry of one deform_conv2d call (internal), checked and filled by
// csrc/ops/deform_conv2d.cpp and handed to the CPU and CUDA kernels. A plain struct:
// per-tier kernel files include it.
#pragma once

#include <cstdint>

namespace tvops {

struct DeformConvShape {
  int64_t batch, in_channels, height, width;        // input [N, Cin, H, W]
  int64_t out_channels, kernel_h, kernel_w;         // weight [Cout, Cin / groups, kh, kw]
  int64_t out_h, out_w;                             // output [N, Cout, Ho, Wo]
  int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  int64_t groups, offset_groups;
  bool use_mask;

  int64_t taps() const { return kernel_h * kernel_w; }
  int64_t in_per_group() const { return in_channels / groups; }      // weight group's input channels
  int64_t out_per_group() const { return out_channels / groups; }
  int64_t in_per_offset_group() const { return in_channels / offset_groups; }
};

}  // namespace tvops
