// Autograd kernels of the torchvision:: operators (kernels.cpp registers the schemas
// and the CPU/CUDA kernels): the RoI ops give gradients to the feature map, never to
// the boxes; deform_conv2d to all five tensors; a second derivative raises, as in
// libtorchvision.
#include <torch/autograd.h>
#include <torch/library.h>

#include <string>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

template <typename Signature>
c10::TypedOperatorHandle<Signature> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

// ---- the operators, through the dispatcher ----

at::Tensor roi_align_op(const at::Tensor& input, const at::Tensor& rois, double scale, int64_t ph, int64_t pw,
                        int64_t sampling_ratio, bool aligned) {
  static auto handle = op<decltype(roi_align_op)>("torchvision::roi_align");
  return handle.call(input, rois, scale, ph, pw, sampling_ratio, aligned);
}

at::Tensor roi_align_backward_op(const at::Tensor& grad, const at::Tensor& rois, double scale, int64_t ph, int64_t pw,
                                 int64_t n, int64_t c, int64_t h, int64_t w, int64_t sampling_ratio, bool aligned) {
  static auto handle = op<decltype(roi_align_backward_op)>("torchvision::_roi_align_backward");
  return handle.call(grad, rois, scale, ph, pw, n, c, h, w, sampling_ratio, aligned);
}

using Pair = std::tuple<at::Tensor, at::Tensor>;

Pair roi_pool_op(const at::Tensor& input, const at::Tensor& rois, double scale, int64_t ph, int64_t pw) {
  static auto handle = op<decltype(roi_pool_op)>("torchvision::roi_pool");
  return handle.call(input, rois, scale, ph, pw);
}

at::Tensor roi_pool_backward_op(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& argmax, double scale,
                                int64_t ph, int64_t pw, int64_t n, int64_t c, int64_t h, int64_t w) {
  static auto handle = op<decltype(roi_pool_backward_op)>("torchvision::_roi_pool_backward");
  return handle.call(grad, rois, argmax, scale, ph, pw, n, c, h, w);
}

Pair ps_roi_align_op(const at::Tensor& input, const at::Tensor& rois, double scale, int64_t ph, int64_t pw,
                     int64_t sampling_ratio) {
  static auto handle = op<decltype(ps_roi_align_op)>("torchvision::ps_roi_align");
  return handle.call(input, rois, scale, ph, pw, sampling_ratio);
}

at::Tensor ps_roi_align_backward_op(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& mapping,
                                    double scale, int64_t ph, int64_t pw, int64_t sampling_ratio, int64_t n,
                                    int64_t c, int64_t h, int64_t w) {
  static auto handle = op<decltype(ps_roi_align_backward_op)>("torchvision::_ps_roi_align_backward");
  return handle.call(grad, rois, mapping, scale, ph, pw, sampling_ratio, n, c, h, w);
}

Pair ps_roi_pool_op(const at::Tensor& input, const at::Tensor& rois, double scale, int64_t ph, int64_t pw) {
  static auto handle = op<decltype(ps_roi_pool_op)>("torchvision::ps_roi_pool");
  return handle.call(input, rois, scale, ph, pw);
}

at::Tensor ps_roi_pool_backward_op(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& mapping,
                                   double scale, int64_t ph, int64_t pw, int64_t n, int64_t c, int64_t h, int64_t w) {
  static auto handle = op<decltype(ps_roi_pool_backward_op)>("torchvision::_ps_roi_pool_backward");
  return handle.call(grad, rois, mapping, scale, ph, pw, n, c, h, w);
}

at::Tensor deform_conv2d_op(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                            const at::Tensor& mask, const at::Tensor& bias, int64_t sh, int64_t sw, int64_t ph,
                            int64_t pw, int64_t dh, int64_t dw, int64_t groups, int64_t offset_groups,
                            bool use_mask) {
  static auto handle = op<decltype(deform_conv2d_op)>("torchvision::deform_conv2d");
  return handle.call(input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask);
}

using Five = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

Five deform_conv2d_backward_op(const at::Tensor& grad, const at::Tensor& input, const at::Tensor& weight,
                               const at::Tensor& offset, const at::Tensor& mask, const at::Tensor& bias, int64_t sh,
                               int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups,
                               int64_t offset_groups, bool use_mask) {
  static auto handle = op<decltype(deform_conv2d_backward_op)>("torchvision::_deform_conv2d_backward");
  return handle.call(grad, input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups,
                     use_mask);
}

// ---- shared pieces of the formulas ----

// What every RoI backward needs: the boxes (and the index output), the scalars, the input's shape.
void save(AutogradContext* ctx, const at::Tensor& input, std::vector<at::Tensor> tensors, double scale, int64_t ph,
          int64_t pw, int64_t sampling_ratio = 0, bool aligned = false) {
  ctx->save_for_backward(std::move(tensors));
  ctx->saved_data["scale"] = scale;
  ctx->saved_data["ph"] = ph;
  ctx->saved_data["pw"] = pw;
  ctx->saved_data["sampling_ratio"] = sampling_ratio;
  ctx->saved_data["aligned"] = aligned;
  ctx->saved_data["shape"] = input.sizes().vec();
}

struct Saved {
  double scale;
  int64_t ph, pw, sampling_ratio;
  bool aligned;
  int64_t n, c, h, w;
};

Saved saved(AutogradContext* ctx) {
  const auto shape = ctx->saved_data["shape"].toIntVector();
  TORCH_CHECK(shape.size() == 4, "RoI ops take [N, C, H, W] inputs, got ", shape.size(), " dimensions");
  return {ctx->saved_data["scale"].toDouble(), ctx->saved_data["ph"].toInt(), ctx->saved_data["pw"].toInt(),
          ctx->saved_data["sampling_ratio"].toInt(), ctx->saved_data["aligned"].toBool(),
          shape[0], shape[1], shape[2], shape[3]};
}

// The input's gradient, then nothing for the other `rest` arguments.
variable_list input_gradient(at::Tensor grad_input, int rest) {
  variable_list out{std::move(grad_input)};
  out.resize(1 + rest);
  return out;
}

// ---- the formulas ----

class RoIAlign : public torch::autograd::Function<RoIAlign> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& input, const Variable& rois, double scale,
                               int64_t ph, int64_t pw, int64_t sampling_ratio, bool aligned) {
    save(ctx, input, {rois}, scale, ph, pw, sampling_ratio, aligned);
    at::AutoDispatchBelowADInplaceOrView below;
    return {roi_align_op(input, rois, scale, ph, pw, sampling_ratio, aligned)};
  }
  static variable_list backward(AutogradContext* ctx, const variable_list& grads) {
    const Saved s = saved(ctx);
    const auto rois = ctx->get_saved_variables()[0];
    return input_gradient(roi_align_backward_op(grads[0], rois, s.scale, s.ph, s.pw, s.n, s.c, s.h, s.w,
                                                s.sampling_ratio, s.aligned), 6);
  }
};

class RoIPool : public torch::autograd::Function<RoIPool> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& input, const Variable& rois, double scale,
                               int64_t ph, int64_t pw) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto [out, argmax] = roi_pool_op(input, rois, scale, ph, pw);
    save(ctx, input, {rois, argmax}, scale, ph, pw);
    ctx->mark_non_differentiable({argmax});
    return {out, argmax};
  }
  static variable_list backward(AutogradContext* ctx, const variable_list& grads) {
    const Saved s = saved(ctx);
    const auto v = ctx->get_saved_variables();
    return input_gradient(roi_pool_backward_op(grads[0], v[0], v[1], s.scale, s.ph, s.pw, s.n, s.c, s.h, s.w), 4);
  }
};

class PSRoIAlign : public torch::autograd::Function<PSRoIAlign> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& input, const Variable& rois, double scale,
                               int64_t ph, int64_t pw, int64_t sampling_ratio) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto [out, mapping] = ps_roi_align_op(input, rois, scale, ph, pw, sampling_ratio);
    save(ctx, input, {rois, mapping}, scale, ph, pw, sampling_ratio);
    ctx->mark_non_differentiable({mapping});
    return {out, mapping};
  }
  static variable_list backward(AutogradContext* ctx, const variable_list& grads) {
    const Saved s = saved(ctx);
    const auto v = ctx->get_saved_variables();
    return input_gradient(ps_roi_align_backward_op(grads[0], v[0], v[1], s.scale, s.ph, s.pw, s.sampling_ratio, s.n,
                                                   s.c, s.h, s.w), 5);
  }
};

class PSRoIPool : public torch::autograd::Function<PSRoIPool> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& input, const Variable& rois, double scale,
                               int64_t ph, int64_t pw) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto [out, mapping] = ps_roi_pool_op(input, rois, scale, ph, pw);
    save(ctx, input, {rois, mapping}, scale, ph, pw);
    ctx->mark_non_differentiable({mapping});
    return {out, mapping};
  }
  static variable_list backward(AutogradContext* ctx, const variable_list& grads) {
    const Saved s = saved(ctx);
    const auto v = ctx->get_saved_variables();
    return input_gradient(ps_roi_pool_backward_op(grads[0], v[0], v[1], s.scale, s.ph, s.pw, s.n, s.c, s.h, s.w), 4);
  }
};

// deform_conv2d: gradients for input, weight, offset, mask (when used) and bias.
class DeformConv2d : public torch::autograd::Function<DeformConv2d> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& input, const Variable& weight,
                               const Variable& offset, const Variable& mask, const Variable& bias, int64_t sh,
                               int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups,
                               int64_t offset_groups, bool use_mask) {
    ctx->save_for_backward({input, weight, offset, mask, bias});
    ctx->saved_data["args"] = std::vector<int64_t>{sh, sw, ph, pw, dh, dw, groups, offset_groups};
    ctx->saved_data["use_mask"] = use_mask;
    at::AutoDispatchBelowADInplaceOrView below;
    return {deform_conv2d_op(input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups,
                             use_mask)};
  }
  static variable_list backward(AutogradContext* ctx, const variable_list& grads) {
    const auto v = ctx->get_saved_variables();
    const auto a = ctx->saved_data["args"].toIntVector();
    const bool use_mask = ctx->saved_data["use_mask"].toBool();
    auto [gi, gw, go, gm, gb] = deform_conv2d_backward_op(grads[0], v[0], v[1], v[2], v[3], v[4], a[0], a[1], a[2],
                                                          a[3], a[4], a[5], a[6], a[7], use_mask);
    variable_list out{gi, gw, go, use_mask ? gm : Variable(), gb};
    out.resize(14);
    return out;
  }
};

// A backward operator: differentiable inputs give an output whose own backward raises.
template <const char* Forward>
class NoDoubleBackward : public torch::autograd::Function<NoDoubleBackward<Forward>> {
 public:
  template <typename Fn, typename... Args>
  static variable_list forward(AutogradContext* /*ctx*/, Fn fn, const Variable& grad, Args... args) {
    at::AutoDispatchBelowADInplaceOrView below;
    return {fn(grad, args...)};
  }
  static variable_list backward(AutogradContext* /*ctx*/, const variable_list& /*grads*/) {
    TORCH_CHECK(false, "double backwards on ", Forward, " not supported");
    return {};
  }
};

class DeformConv2dBackward : public torch::autograd::Function<DeformConv2dBackward> {
 public:
  template <typename... Args>
  static variable_list forward(AutogradContext* /*ctx*/, Args... args) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto [gi, gw, go, gm, gb] = deform_conv2d_backward_op(args...);
    return {gi, gw, go, gm, gb};
  }
  static variable_list backward(AutogradContext* /*ctx*/, const variable_list& /*grads*/) {
    TORCH_CHECK(false, "double backwards on deform_conv2d not supported");
    return {};
  }
};

constexpr char kRoIAlign[] = "roi_align";
constexpr char kRoIPool[] = "roi_pool";
constexpr char kPSRoIAlign[] = "ps_roi_align";
constexpr char kPSRoIPool[] = "ps_roi_pool";

// ---- the Autograd kernels ----

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, double scale, int64_t ph, int64_t pw,
                     int64_t sampling_ratio, bool aligned) {
  return RoIAlign::apply(input, rois, scale, ph, pw, sampling_ratio, aligned)[0];
}

Pair roi_pool(const at::Tensor& input, const at::Tensor& rois, double scale, int64_t ph, int64_t pw) {
  auto out = RoIPool::apply(input, rois, scale, ph, pw);
  return {out[0], out[1]};
}

Pair ps_roi_align(const at::Tensor& input, const at::Tensor& rois, double scale, int64_t ph, int64_t pw,
                  int64_t sampling_ratio) {
  auto out = PSRoIAlign::apply(input, rois, scale, ph, pw, sampling_ratio);
  return {out[0], out[1]};
}

Pair ps_roi_pool(const at::Tensor& input, const at::Tensor& rois, double scale, int64_t ph, int64_t pw) {
  auto out = PSRoIPool::apply(input, rois, scale, ph, pw);
  return {out[0], out[1]};
}

at::Tensor roi_align_backward(const at::Tensor& grad, const at::Tensor& rois, double scale, int64_t ph, int64_t pw,
                              int64_t n, int64_t c, int64_t h, int64_t w, int64_t sampling_ratio, bool aligned) {
  return NoDoubleBackward<kRoIAlign>::apply(&roi_align_backward_op, grad, rois, scale, ph, pw, n, c, h, w,
                                            sampling_ratio, aligned)[0];
}

at::Tensor roi_pool_backward(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& argmax, double scale,
                             int64_t ph, int64_t pw, int64_t n, int64_t c, int64_t h, int64_t w) {
  return NoDoubleBackward<kRoIPool>::apply(&roi_pool_backward_op, grad, rois, argmax, scale, ph, pw, n, c, h, w)[0];
}

at::Tensor ps_roi_align_backward(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& mapping,
                                 double scale, int64_t ph, int64_t pw, int64_t sampling_ratio, int64_t n, int64_t c,
                                 int64_t h, int64_t w) {
  return NoDoubleBackward<kPSRoIAlign>::apply(&ps_roi_align_backward_op, grad, rois, mapping, scale, ph, pw,
                                              sampling_ratio, n, c, h, w)[0];
}

at::Tensor ps_roi_pool_backward(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& mapping,
                                double scale, int64_t ph, int64_t pw, int64_t n, int64_t c, int64_t h, int64_t w) {
  return NoDoubleBackward<kPSRoIPool>::apply(&ps_roi_pool_backward_op, grad, rois, mapping, scale, ph, pw, n, c, h,
                                             w)[0];
}

at::Tensor deform_conv2d(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                         const at::Tensor& mask, const at::Tensor& bias, int64_t sh, int64_t sw, int64_t ph,
                         int64_t pw, int64_t dh, int64_t dw, int64_t groups, int64_t offset_groups, bool use_mask) {
  return DeformConv2d::apply(input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups,
                             use_mask)[0];
}

Five deform_conv2d_backward(const at::Tensor& grad, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& offset, const at::Tensor& mask, const at::Tensor& bias, int64_t sh,
                            int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups,
                            int64_t offset_groups, bool use_mask) {
  auto g = DeformConv2dBackward::apply(grad, input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups,
                                       offset_groups, use_mask);
  return {g[0], g[1], g[2], g[3], g[4]};
}

}  // namespace

TORCH_LIBRARY_IMPL(torchvision, Autograd, m) {
  m.impl("deform_conv2d", TORCH_FN(deform_conv2d));
  m.impl("_deform_conv2d_backward", TORCH_FN(deform_conv2d_backward));
  m.impl("roi_align", TORCH_FN(roi_align));
  m.impl("_roi_align_backward", TORCH_FN(roi_align_backward));
  m.impl("roi_pool", TORCH_FN(roi_pool));
  m.impl("_roi_pool_backward", TORCH_FN(roi_pool_backward));
  m.impl("ps_roi_align", TORCH_FN(ps_roi_align));
  m.impl("_ps_roi_align_backward", TORCH_FN(ps_roi_align_backward));
  m.impl("ps_roi_pool", TORCH_FN(ps_roi_pool));
  m.impl("_ps_roi_pool_backward", TORCH_FN(ps_roi_pool_backward));
}
