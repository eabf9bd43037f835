// deform_conv2d front-end: torchvision's argument checks (OPS.md §10), then CUDA
// tensors go to kernels/cuda, CPU ones to the tier's implicit-GEMM kernels over
// tiles of 64 output pixels. The CPU path needs, beyond the output, one channels-last
// copy of the input and packed weights (torchvision: an im2col buffer of up to
// Cin * kh * kw * 32 images * Ho * Wo elements).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "dispatch/cpu_isa.h"
#include "ops/deform_conv2d_shape.h"
#include "ops/device_check.h"
#include "ops/roi_common.h"
#include "tvops/ops.h"
#include "tvops/runtime.h"

// The CUDA kernels (kernels/cuda/deform_conv2d.cu) define TVOPS_CUDA_DEFORM_CONV when built.
#if defined(TVOPS_WITH_CUDA) && defined(TVOPS_CUDA_DEFORM_CONV)
#include "kernels/cuda/ops.h"
#endif

namespace tvops {

namespace {

using detail::compute_dtype;

void check_4d(const char* op, const char* name, const Tensor& t) {
  TVOPS_CHECK(t.defined() && t.dim() == 4, Value, op, ": ", name, " should be a 4d tensor, got ",
              t.defined() ? t.describe() : std::string("undefined"));
}

void check_same(const char* op, const char* name, const Tensor& t, const Tensor& input) {
  TVOPS_CHECK(t.dtype() == input.dtype(), Type, op, ": ", name, " should have the input's dtype (",
              dtype_name(input.dtype()), "), got ", dtype_name(t.dtype()));
  TVOPS_CHECK(t.device() == input.device(), Device, op, ": ", name, " should be on the input's device (",
              device_name(input.device()), "), got ", device_name(t.device()));
}

// All of torchvision's checks, in its order, with its wording where it has one.
DeformConvShape checked_shape(const char* op, const Tensor& input, const Tensor& weight, const Tensor& offset,
                              const Tensor& mask, const Tensor& bias, int64_t stride_h, int64_t stride_w,
                              int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w, int64_t groups,
                              int64_t offset_groups, bool use_mask) {
  check_4d(op, "input", input);
  check_4d(op, "offset", offset);
  check_4d(op, "weight", weight);
  if (use_mask) check_4d(op, "mask", mask);
  TVOPS_CHECK(is_floating(input.dtype()), Type, op, ": input must be a floating point tensor, got ",
              dtype_name(input.dtype()));
  check_same(op, "weight", weight, input);
  check_same(op, "offset", offset, input);
  if (use_mask) check_same(op, "mask", mask, input);
  if (bias.defined()) {
    check_same(op, "bias", bias, input);
    TVOPS_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), Value, op, ": bias should be [",
                weight.size(0), "] (one per output channel), got ", bias.describe());
  }
  DeformConvShape s{};
  s.batch = input.size(0);
  s.in_channels = input.size(1);
  s.height = input.size(2);
  s.width = input.size(3);
  s.out_channels = weight.size(0);
  s.kernel_h = weight.size(2);
  s.kernel_w = weight.size(3);
  s.stride_h = stride_h, s.stride_w = stride_w, s.pad_h = pad_h, s.pad_w = pad_w;
  s.dilation_h = dil_h, s.dilation_w = dil_w, s.groups = groups, s.offset_groups = offset_groups;
  s.use_mask = use_mask;
  TVOPS_CHECK(s.kernel_h > 0 && s.kernel_w > 0, Value, op, ": weight_h: ", s.kernel_h, " weight_w: ", s.kernel_w,
              " (the kernel must be at least 1x1)");
  TVOPS_CHECK(stride_h > 0 && stride_w > 0, Value, op, ": stride_h: ", stride_h, " stride_w: ", stride_w,
              " (strides must be positive)");
  TVOPS_CHECK(pad_h >= 0 && pad_w >= 0, Value, op, ": pad_h: ", pad_h, " pad_w: ", pad_w,
              " (padding must not be negative)");
  TVOPS_CHECK(dil_h > 0 && dil_w > 0, Value, op, ": dilation_h: ", dil_h, " dilation_w: ", dil_w,
              " (dilation must be positive)");
  TVOPS_CHECK(groups > 0, Value, op, ": groups must be positive, got ", groups);
  TVOPS_CHECK(offset_groups > 0, Value, op, ": offset_groups must be positive, got ", offset_groups);
  TVOPS_CHECK(weight.size(1) * groups == s.in_channels, Value, op, ": weight.shape[1] * groups (", weight.size(1),
              " * ", groups, ") must equal the input's channels (", s.in_channels, ")");
  TVOPS_CHECK(s.out_channels % groups == 0, Value, op, ": weight.shape[0] (", s.out_channels,
              ") must be divisible by groups (", groups, ")");
  const int64_t taps = s.taps();
  TVOPS_CHECK(offset.size(1) == offset_groups * 2 * taps, Value, op, ": offset.shape[1] is not valid: got: ",
              offset.size(1), " expected: ", offset_groups * 2 * taps);
  if (use_mask)
    TVOPS_CHECK(mask.size(1) == offset_groups * taps, Value, op, ": mask.shape[1] is not valid: got: ", mask.size(1),
                " expected: ", offset_groups * taps);
  TVOPS_CHECK(s.in_channels % offset_groups == 0, Value, op, ": input channels (", s.in_channels,
              ") must be divisible by offset_groups (", offset_groups, ")");
  TVOPS_CHECK(offset.size(0) == s.batch, Value, op, ": invalid batch size of offset: got ", offset.size(0),
              ", input has ", s.batch);
  // Bounded before the products below, so no size overflows int64.
  constexpr int64_t kMaxExtent = int64_t(1) << 24;
  for (int64_t v : {s.height, s.width, s.kernel_h, s.kernel_w, pad_h, pad_w, dil_h, dil_w, stride_h, stride_w})
    TVOPS_CHECK(v <= kMaxExtent, Value, op, ": sizes, strides, padding and dilation must stay below 2^24, got ", v);
  s.out_h = (s.height + 2 * pad_h - (dil_h * (s.kernel_h - 1) + 1)) / stride_h + 1;
  s.out_w = (s.width + 2 * pad_w - (dil_w * (s.kernel_w - 1) + 1)) / stride_w + 1;
  TVOPS_CHECK(offset.size(2) == s.out_h && offset.size(3) == s.out_w, Value, op, ": offset output dims: (",
              offset.size(2), ", ", offset.size(3), ") - computed output dims: (", s.out_h, ", ", s.out_w, ")");
  if (use_mask) {
    TVOPS_CHECK(mask.size(0) == s.batch, Value, op, ": invalid batch size of mask: got ", mask.size(0),
                ", input has ", s.batch);
    TVOPS_CHECK(mask.size(2) == s.out_h && mask.size(3) == s.out_w, Value, op, ": mask output dims: (",
                mask.size(2), ", ", mask.size(3), ") - computed output dims: (", s.out_h, ", ", s.out_w, ")");
  }
  TVOPS_CHECK(s.out_h > 0 && s.out_w > 0, Value, op, ": Calculated output size too small - out_h: ", s.out_h,
              " out_w: ", s.out_w);
  return s;
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// The weights [Cout, Cin_g, kh, kw] packed for the kernels (kernel_table.h): per group
// [ceil(Cout_g / B)][Kp][B] for the forward and, transposed, [Kp / B][Cout_g][B] for
// the backward's columns gradient. k = tap * Cin_g + channel.
template <typename T>
struct PackedWeights {
  int64_t B, K, Kp, cb;
  Tensor forward, transposed;

  PackedWeights(const DeformConvShape& s, const T* w, bool backward) {
    B = cpu::kDeformBlockBytes / int64_t(sizeof(T));
    const int64_t cin_g = s.in_per_group(), cout_g = s.out_per_group(), taps = s.taps();
    K = taps * cin_g;
    Kp = round_up(K, B);
    cb = (cout_g + B - 1) / B;
    const DType dt = sizeof(T) == 8 ? DType::Float64 : DType::Float32;
    forward = Tensor::zeros({s.groups * cb * Kp * B}, dt);
    T* f = forward.data<T>();
    auto at = [&](int64_t g, int64_t co, int64_t k) {  // weight[g * cout_g + co][k % cin_g][k / cin_g]
      return w[((g * cout_g + co) * cin_g + k % cin_g) * taps + k / cin_g];
    };
    for (int64_t g = 0; g < s.groups; ++g)
      for (int64_t co = 0; co < cout_g; ++co)
        for (int64_t k = 0; k < K; ++k) f[((g * cb + co / B) * Kp + k) * B + co % B] = at(g, co, k);
    if (!backward) return;
    transposed = Tensor::zeros({s.groups * Kp * cout_g}, dt);
    T* t = transposed.data<T>();
    for (int64_t g = 0; g < s.groups; ++g)
      for (int64_t co = 0; co < cout_g; ++co)
        for (int64_t k = 0; k < K; ++k) t[((g * (Kp / B) + k / B) * cout_g + co) * B + k % B] = at(g, co, k);
  }
};

struct CpuInputs {
  Tensor nhwc, offset, mask, weight, bias;
};

template <typename T>
CpuInputs cpu_inputs(const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                     const Tensor& bias, bool use_mask) {
  const DType dt = compute_dtype(input.dtype());
  CpuInputs in;
  in.nhwc = detail::to_nhwc<T>(input);
  in.offset = offset.to(dt).contiguous();
  if (use_mask) in.mask = mask.to(dt).contiguous();
  in.weight = weight.to(dt).contiguous();
  if (bias.defined()) in.bias = bias.to(dt).contiguous();
  return in;
}

template <typename T>
cpu::DeformConvArgs<T> kernel_args(const DeformConvShape& s, const CpuInputs& in, const PackedWeights<T>& pw) {
  cpu::DeformConvArgs<T> a{};
  a.s = s;
  a.input = in.nhwc.data<T>();
  a.offset = in.offset.data<T>();
  a.mask = in.mask.defined() ? in.mask.data<T>() : nullptr;
  a.weight = pw.forward.template data<T>();
  a.weight_t = pw.transposed.defined() ? pw.transposed.template data<T>() : nullptr;
  a.bias = in.bias.defined() ? in.bias.data<T>() : nullptr;
  return a;
}

template <typename T>
Tensor forward_cpu(const DeformConvShape& s, const Tensor& input, const Tensor& weight, const Tensor& offset,
                   const Tensor& mask, const Tensor& bias, cpu::DeformConvForward<T> kernel) {
  const DType dt = compute_dtype(input.dtype());
  const int64_t hwo = s.out_h * s.out_w;
  if (s.in_channels == 0) {  // nothing to sample: the bias alone
    Tensor out = Tensor::zeros({s.batch, s.out_channels, s.out_h, s.out_w}, dt);
    if (bias.defined()) {
      const Tensor b = bias.to(dt).contiguous();
      for (int64_t n = 0; n < s.batch; ++n)
        for (int64_t c = 0; c < s.out_channels; ++c)
          std::fill_n(out.template data<T>() + (n * s.out_channels + c) * hwo, hwo, b.template data<T>()[c]);
    }
    return out;
  }
  const CpuInputs in = cpu_inputs<T>(input, weight, offset, mask, bias, s.use_mask);
  const PackedWeights<T> pw(s, in.weight.data<T>(), false);
  const auto args = kernel_args(s, in, pw);
  Tensor out = Tensor::empty({s.batch, s.out_channels, s.out_h, s.out_w}, dt);
  const int64_t tiles = (hwo + cpu::kDeformTilePixels - 1) / cpu::kDeformTilePixels;
  detail::parallel_for(0, s.batch * tiles, 1, [&](int64_t lo, int64_t hi) { kernel(args, lo, hi, out.data<T>()); });
  return out;
}

template <typename T>
std::vector<Tensor> backward_cpu(const DeformConvShape& s, const Tensor& grad_in, const Tensor& input,
                                 const Tensor& weight, const Tensor& offset, const Tensor& mask,
                                 cpu::DeformConvBackward<T> kernel) {
  const DType dt = compute_dtype(input.dtype());
  const int64_t hwo = s.out_h * s.out_w, Cin = s.in_channels, HW = s.height * s.width;
  const Tensor grad = grad_in.to(dt).contiguous();
  Tensor grad_offset = Tensor::zeros(offset.sizes(), dt);
  Tensor grad_mask = s.use_mask ? Tensor::zeros(mask.sizes(), dt) : Tensor();
  Tensor grad_bias = Tensor::zeros({s.out_channels}, dt);
  for (int64_t n = 0; n < s.batch; ++n)  // grad_bias = grad summed over N, Ho, Wo
    for (int64_t c = 0; c < s.out_channels; ++c) {
      const T* g = grad.data<T>() + (n * s.out_channels + c) * hwo;
      double sum = 0;
      for (int64_t p = 0; p < hwo; ++p) sum += g[p];
      grad_bias.data<T>()[c] += T(sum);
    }
  if (Cin == 0)
    return {Tensor::zeros(input.sizes(), dt), Tensor::zeros(weight.sizes(), dt), grad_offset, grad_mask, grad_bias};

  const CpuInputs in = cpu_inputs<T>(input, weight, offset, mask, Tensor(), s.use_mask);
  const PackedWeights<T> pw(s, in.weight.data<T>(), true);
  const auto args = kernel_args(s, in, pw);
  const int64_t tiles = (hwo + cpu::kDeformTilePixels - 1) / cpu::kDeformTilePixels;
  // One accumulator slot per worker: slot 0 scatters straight into the image's input
  // gradient, the others into their own planes, added at the end of the image.
  const int64_t slots = std::max<int64_t>(1, std::min<int64_t>(num_threads(), tiles));
  const int64_t wsize = pw.forward.numel();
  Tensor grad_nhwc = Tensor::zeros({s.batch, s.height, s.width, Cin}, dt);
  Tensor planes = Tensor::empty({std::max<int64_t>(slots - 1, 1) * HW * Cin}, dt);
  Tensor weights = Tensor::zeros({slots * wsize}, dt);
  T* gw_slots = weights.data<T>();
  for (int64_t n = 0; n < s.batch; ++n) {
    T* image_grad = grad_nhwc.data<T>() + n * HW * Cin;
    detail::parallel_for(0, slots, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t slot = lo; slot < hi; ++slot) {
        T* gi = slot == 0 ? image_grad : planes.data<T>() + (slot - 1) * HW * Cin;
        if (slot > 0) std::fill_n(gi, HW * Cin, T(0));
        kernel(args, grad.data<T>(), n, tiles * slot / slots, tiles * (slot + 1) / slots, gi, gw_slots + slot * wsize,
               grad_offset.data<T>(), s.use_mask ? grad_mask.data<T>() : nullptr);
      }
    });
    if (slots > 1)
      detail::parallel_for(0, HW * Cin, 1 << 14, [&](int64_t lo, int64_t hi) {
        for (int64_t slot = 1; slot < slots; ++slot) {
          const T* src = planes.data<T>() + (slot - 1) * HW * Cin;
          for (int64_t i = lo; i < hi; ++i) image_grad[i] += src[i];
        }
      });
  }
  // The weight gradient: slots summed, unpacked to [Cout, Cin_g, kh, kw].
  Tensor grad_weight = Tensor::empty(weight.sizes(), dt);
  const int64_t cin_g = s.in_per_group(), cout_g = s.out_per_group(), taps = s.taps(), B = pw.B;
  T* gwt = grad_weight.data<T>();
  for (int64_t g = 0; g < s.groups; ++g)
    for (int64_t co = 0; co < cout_g; ++co)
      for (int64_t k = 0; k < pw.K; ++k) {
        const int64_t at = ((g * pw.cb + co / B) * pw.Kp + k) * B + co % B;
        T sum = 0;
        for (int64_t slot = 0; slot < slots; ++slot) sum += gw_slots[slot * wsize + at];
        gwt[((g * cout_g + co) * cin_g + k % cin_g) * taps + k / cin_g] = sum;
      }
  return {detail::from_nhwc<T>(grad_nhwc, dt), grad_weight, grad_offset, grad_mask, grad_bias};
}

// bfloat16 on a CPU with AVX512_BF16: the map stays bfloat16 (channels-last), the
// weights become bfloat16 k pairs, and vdpbf16ps multiplies (kernel_table.h).
Tensor forward_bf16(const DeformConvShape& s, const Tensor& input, const Tensor& weight, const Tensor& offset,
                    const Tensor& mask, const Tensor& bias, cpu::DeformConvForwardBf16 kernel) {
  const int64_t cin_g = s.in_per_group(), cout_g = s.out_per_group(), taps = s.taps(), B = 64;
  const int64_t K = taps * cin_g, Kp = round_up(K, B), cb = (cout_g + B - 1) / B;
  const Tensor nhwc = detail::to_nhwc<uint16_t>(input);
  const Tensor off = offset.to(DType::Float32).contiguous();
  const Tensor msk = s.use_mask ? mask.to(DType::Float32).contiguous() : Tensor();
  const Tensor bs = bias.defined() ? bias.to(DType::Float32).contiguous() : Tensor();
  const Tensor w = weight.to(DType::Float32).contiguous();
  Tensor staged = Tensor::zeros({s.groups * cb * Kp * B}, DType::Float32);  // [g][cb][Kp/2][64][2]
  float* st = staged.data<float>();
  const float* wf = w.data<float>();
  for (int64_t g = 0; g < s.groups; ++g)
    for (int64_t co = 0; co < cout_g; ++co)
      for (int64_t k = 0; k < K; ++k)
        st[(((g * cb + co / B) * Kp + k / 2 * 2) * B) + (co % B) * 2 + k % 2] =
            wf[((g * cout_g + co) * cin_g + k % cin_g) * taps + k / cin_g];
  Tensor packed = Tensor::empty({staged.numel()}, DType::BFloat16);
  detail::cpu_kernels().float_to_bfloat16(st, staged.numel(), packed.data<uint16_t>());
  cpu::DeformConvArgsBf16 a{};
  a.s = s;
  a.input = nhwc.data<uint16_t>();
  a.offset = off.data<float>();
  a.mask = msk.defined() ? msk.data<float>() : nullptr;
  a.weight = packed.data<uint16_t>();
  a.bias = bs.defined() ? bs.data<float>() : nullptr;
  Tensor out = Tensor::empty({s.batch, s.out_channels, s.out_h, s.out_w}, DType::BFloat16);
  const int64_t tiles = (s.out_h * s.out_w + cpu::kDeformTilePixels - 1) / cpu::kDeformTilePixels;
  detail::parallel_for(0, s.batch * tiles, 1, [&](int64_t lo, int64_t hi) { kernel(a, lo, hi, out.data<uint16_t>()); });
  return out;
}

// float16 / bfloat16 compute in float32 and come back in their dtype.
std::vector<Tensor> as_dtype(std::vector<Tensor> ts, DType dtype) {
  for (Tensor& t : ts)
    if (t.defined()) t = detail::result_as(t, dtype);
  return ts;
}

}  // namespace

Tensor deform_conv2d(const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                     const Tensor& bias, int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                     int64_t dilation_h, int64_t dilation_w, int64_t groups, int64_t offset_groups, bool use_mask,
                     bool allow_tf32, const Context& ctx) {
  const char* op = "deform_conv2d";
  const DeformConvShape s = checked_shape(op, input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w,
                                          dilation_h, dilation_w, groups, offset_groups, use_mask);
  if (s.batch == 0) return Tensor::zeros({0, s.out_channels, s.out_h, s.out_w}, input.dtype(), input.device(), ctx);
  if (detail::runs_on_cuda(op, input)) {
#if defined(TVOPS_WITH_CUDA) && defined(TVOPS_CUDA_DEFORM_CONV)
    return cuda::deform_conv2d(input.contiguous(ctx), weight.contiguous(ctx), offset.contiguous(ctx),
                               use_mask ? mask.contiguous(ctx) : Tensor(), bias.defined() ? bias.contiguous(ctx) : bias,
                               s, allow_tf32, ctx);
#else
    detail::fail(ErrorKind::Unsupported, op, ": this build has no CUDA deform_conv2d kernels");
#endif
  }
  (void)allow_tf32;
  const cpu::KernelTable& kt = detail::cpu_kernels();
  if (input.dtype() == DType::Float64)
    return forward_cpu<double>(s, input, weight, offset, mask, bias, kt.deform_conv_forward_f64);
  if (input.dtype() == DType::BFloat16 && kt.deform_conv_forward_bf16 && s.in_channels > 0)
    return forward_bf16(s, input, weight, offset, mask, bias, kt.deform_conv_forward_bf16);
  return detail::result_as(forward_cpu<float>(s, input, weight, offset, mask, bias, kt.deform_conv_forward_f32),
                           input.dtype());
}

std::vector<Tensor> deform_conv2d_backward(const Tensor& grad, const Tensor& input, const Tensor& weight,
                                           const Tensor& offset, const Tensor& mask, const Tensor& bias,
                                           int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                           int64_t dilation_h, int64_t dilation_w, int64_t groups,
                                           int64_t offset_groups, bool use_mask, bool allow_tf32,
                                           const Context& ctx) {
  const char* op = "deform_conv2d_backward";
  const DeformConvShape s = checked_shape(op, input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w,
                                          dilation_h, dilation_w, groups, offset_groups, use_mask);
  check_4d(op, "grad", grad);
  check_same(op, "grad", grad, input);
  TVOPS_CHECK(grad.size(0) == s.batch && grad.size(1) == s.out_channels && grad.size(2) == s.out_h &&
                  grad.size(3) == s.out_w,
              Value, op, ": grad should be [", s.batch, ", ", s.out_channels, ", ", s.out_h, ", ", s.out_w,
              "] like the output, got ", grad.describe());
  if (s.batch == 0) {
    auto z = [&](const Tensor& t) { return Tensor::zeros(t.sizes(), input.dtype(), input.device(), ctx); };
    return {z(input), z(weight), z(offset), use_mask ? z(mask) : Tensor(),
            Tensor::zeros({s.out_channels}, input.dtype(), input.device(), ctx)};
  }
  if (detail::runs_on_cuda(op, input)) {
#if defined(TVOPS_WITH_CUDA) && defined(TVOPS_CUDA_DEFORM_CONV)
    return cuda::deform_conv2d_backward(grad.contiguous(ctx), input.contiguous(ctx), weight.contiguous(ctx),
                                        offset.contiguous(ctx), use_mask ? mask.contiguous(ctx) : Tensor(), s,
                                        allow_tf32, ctx);
#else
    detail::fail(ErrorKind::Unsupported, op, ": this build has no CUDA deform_conv2d kernels");
#endif
  }
  (void)allow_tf32;
  const cpu::KernelTable& kt = detail::cpu_kernels();
  if (input.dtype() == DType::Float64)
    return backward_cpu<double>(s, grad, input, weight, offset, mask, kt.deform_conv_backward_f64);
  return as_dtype(backward_cpu<float>(s, grad, input, weight, offset, mask, kt.deform_conv_backward_f32),
                  input.dtype());
}

Tensor deform_conv2d_int8(const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                          const Tensor& bias, int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                          int64_t dilation_h, int64_t dilation_w, int64_t groups, int64_t offset_groups,
                          bool use_mask) {
  const char* op = "deform_conv2d_int8";
  const DeformConvShape s = checked_shape(op, input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w,
                                          dilation_h, dilation_w, groups, offset_groups, use_mask);
  TVOPS_CHECK(input.device().is_cpu(), Device, op, ": the int8 path runs on the CPU, got ",
              device_name(input.device()));
  if (s.batch == 0 || s.in_channels == 0)
    return forward_cpu<float>(s, input.to(DType::Float32), weight.to(DType::Float32), offset.to(DType::Float32),
                              use_mask ? mask.to(DType::Float32) : mask, bias.defined() ? bias.to(DType::Float32) : bias,
                              detail::cpu_kernels().deform_conv_forward_f32);
  const int64_t cin_g = s.in_per_group(), cout_g = s.out_per_group(), taps = s.taps(), B = 64;
  const int64_t K = taps * cin_g, Kp = round_up(K, B), cb = (cout_g + B - 1) / B;
  TVOPS_CHECK(K <= 65536, Value, op, ": Cin / groups * kh * kw = ", K,
              " is too large for int32 sums of u8 x s8 products (at most 65536)");
  const Tensor x = input.to(DType::Float32);
  const CpuInputs in = cpu_inputs<float>(x, weight, offset, mask, bias, use_mask);
  auto max_abs = [](const Tensor& t) {
    float m = 0;
    const float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::abs(p[i]));
    return m;
  };
  // Activations: every column is m * (a convex mix of input values).
  const float act_max = max_abs(in.nhwc) * (use_mask ? max_abs(in.mask) : 1.f);
  const float act_scale = act_max > 0 && std::isfinite(act_max) ? act_max / 127.f : 1.f;
  // Weights: symmetric int8 per output channel, packed as k quads.
  Tensor packed = Tensor::zeros({s.groups * cb * Kp * B}, DType::Int8);
  Tensor zero_sums = Tensor::empty({s.out_channels}, DType::Int32);
  Tensor out_scale = Tensor::empty({s.out_channels}, DType::Float32);
  const float* w = in.weight.data<float>();
  int8_t* wq = packed.data<int8_t>();
  for (int64_t g = 0; g < s.groups; ++g)
    for (int64_t co = 0; co < cout_g; ++co) {
      const int64_t oc = g * cout_g + co;
      const float* row = w + oc * K;  // [Cin_g][kh][kw]
      float wmax = 0;
      for (int64_t i = 0; i < K; ++i) wmax = std::max(wmax, std::abs(row[i]));
      const float wscale = wmax > 0 && std::isfinite(wmax) ? wmax / 127.f : 1.f;
      int32_t sum = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float v = std::nearbyint(row[(k % cin_g) * taps + k / cin_g] / wscale);
        const int8_t q = int8_t(std::min(127.f, std::max(-127.f, v)));
        wq[((g * cb + co / B) * Kp + k / 4 * 4) * B + (co % B) * 4 + k % 4] = q;
        sum += q;
      }
      zero_sums.data<int32_t>()[oc] = 128 * sum;
      out_scale.data<float>()[oc] = act_scale * wscale;
    }
  cpu::DeformConvArgsU8 a{};
  a.s = s;
  a.input = in.nhwc.data<float>();
  a.offset = in.offset.data<float>();
  a.mask = use_mask ? in.mask.data<float>() : nullptr;
  a.weight = wq;
  a.zero_sums = zero_sums.data<int32_t>();
  a.out_scale = out_scale.data<float>();
  a.bias = in.bias.defined() ? in.bias.data<float>() : nullptr;
  a.act_inv_scale = 1.f / act_scale;
  const auto kernel = detail::cpu_kernels().deform_conv_forward_u8;
  Tensor out = Tensor::empty({s.batch, s.out_channels, s.out_h, s.out_w}, DType::Float32);
  const int64_t tiles = (s.out_h * s.out_w + cpu::kDeformTilePixels - 1) / cpu::kDeformTilePixels;
  detail::parallel_for(0, s.batch * tiles, 1, [&](int64_t lo, int64_t hi) { kernel(a, lo, hi, out.data<float>()); });
  return out;
}

}  // namespace tvops
