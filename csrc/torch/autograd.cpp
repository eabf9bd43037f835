// Autograd kernels of the torchvision:: RoI operators (kernels.cpp registers the
// schemas and the CPU/CUDA kernels): gradients flow to the feature map through the
// backward operators, never to the boxes, and a second derivative raises, as in
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

}  // namespace

TORCH_LIBRARY_IMPL(torchvision, Autograd, m) {
  m.impl("roi_align", TORCH_FN(roi_align));
  m.impl("_roi_align_backward", TORCH_FN(roi_align_backward));
  m.impl("roi_pool", TORCH_FN(roi_pool));
  m.impl("_roi_pool_backward", TORCH_FN(roi_pool_backward));
  m.impl("ps_roi_align", TORCH_FN(ps_roi_align));
  m.impl("_ps_roi_align_backward", TORCH_FN(ps_roi_align_backward));
  m.impl("ps_roi_pool", TORCH_FN(ps_roi_pool));
  m.impl("_ps_roi_pool_backward", TORCH_FN(ps_roi_pool_backward));
}
