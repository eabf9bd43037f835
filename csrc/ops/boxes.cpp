// Box utilities (torchvision.ops.boxes): format conversion, areas, clipping, small-box
// removal (elementwise, here), and the pairwise IoU family (kernels/cpu/box_iou.cpp).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "dispatch/cpu_isa.h"
#include "tvops/ops.h"
#include "ops/device_check.h"

#if defined(TVOPS_WITH_CUDA)
#include "kernels/cuda/ops.h"
// Returns the CUDA op's result when `cond` (detail::runs_on_cuda() has checked the build and device).
#define CUDA_ROUTE(cond, call) \
  if (cond) return cuda::call
#else
#define CUDA_ROUTE(cond, call) (void)(cond), (void)ctx  // throws for CUDA tensors
#endif

namespace tvops {

namespace {

bool is_small_int(DType d) { return d == DType::Bool || d == DType::UInt8 || d == DType::Int8 || d == DType::Int16; }
bool is_half(DType d) { return d == DType::Float16 || d == DType::BFloat16; }

void check_boxes(const char* op, const char* name, const Tensor& boxes) {
  TVOPS_CHECK(boxes.defined(), Value, op, ": ", name, " is undefined");
  TVOPS_CHECK(boxes.dim() >= 1 && boxes.size(-1) == 4, Value, op, ": ", name,
              " should have shape [..., 4], got ", boxes.describe());
  TVOPS_CHECK(boxes.dtype() != DType::Bool, Type, op, ": ", name, " must be a numeric tensor, got bool");
}

// Applies fn(const C in[4], C out[4]) to every box, computing in C and storing `out_dtype`.
template <typename C, typename Fn>
Tensor map_boxes(const Tensor& boxes, DType out_dtype, Fn fn) {
  const Tensor in = boxes.to(std::is_same_v<C, double> ? DType::Float64
                             : std::is_same_v<C, float> ? DType::Float32 : DType::Int64);
  Tensor out = Tensor::empty(boxes.sizes(), std::is_same_v<C, double> ? DType::Float64
                             : std::is_same_v<C, float> ? DType::Float32 : DType::Int64);
  const int64_t n = boxes.numel() / 4;
  const C* src = in.data<C>();
  C* dst = out.data<C>();
  detail::parallel_for(0, n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) fn(src + 4 * i, dst + 4 * i);
  });
  return out.to(out_dtype);
}

// The dtype torch computes a float box op in: float32 for float32 and the half types
// (torch rounds half results per op; we round once), float64 for float64.
template <typename Fn>
Tensor map_float_boxes(const Tensor& boxes, DType out_dtype, Fn fn) {
  if (boxes.dtype() == DType::Float64) return map_boxes<double>(boxes, out_dtype, fn);
  return map_boxes<float>(boxes, out_dtype, fn);
}

}  // namespace

BoxFormat box_format_from_string(const std::string& name) {
  if (name == "xyxy") return BoxFormat::XYXY;
  if (name == "xywh") return BoxFormat::XYWH;
  if (name == "cxcywh") return BoxFormat::CXCYWH;
  detail::fail(ErrorKind::Value, "unsupported box format '", name, "' (xyxy, xywh and cxcywh are)");
}

Tensor box_convert(const Tensor& boxes, BoxFormat in_fmt, BoxFormat out_fmt, const Context& ctx) {
  check_boxes("box_convert", "boxes", boxes);
  CUDA_ROUTE(detail::runs_on_cuda("box_convert", boxes), box_convert(boxes, in_fmt, out_fmt, ctx));
  const DType d = boxes.dtype();
  if (in_fmt == out_fmt) return boxes.contiguous().to(d == DType::Float32 ? DType::Float64 : DType::Float32).to(d);
  auto to_xyxy = [in_fmt](auto* b, auto* o) {
    using C = std::remove_const_t<std::remove_pointer_t<decltype(b)>>;
    if (in_fmt == BoxFormat::XYXY) {
      std::memcpy(o, b, 4 * sizeof(C));
    } else if (in_fmt == BoxFormat::XYWH) {
      o[0] = b[0]; o[1] = b[1]; o[2] = b[0] + b[2]; o[3] = b[1] + b[3];
    } else {
      const C hw = C(0.5) * b[2], hh = C(0.5) * b[3];
      o[0] = b[0] - hw; o[1] = b[1] - hh; o[2] = b[0] + hw; o[3] = b[1] + hh;
    }
  };
  auto convert = [&](auto* b, auto* o) {
    using C = std::remove_const_t<std::remove_pointer_t<decltype(b)>>;
    C xyxy[4];
    to_xyxy(b, xyxy);
    if (out_fmt == BoxFormat::XYXY) {
      std::memcpy(o, xyxy, sizeof(xyxy));
    } else if (out_fmt == BoxFormat::XYWH) {
      o[0] = xyxy[0]; o[1] = xyxy[1]; o[2] = xyxy[2] - xyxy[0]; o[3] = xyxy[3] - xyxy[1];
    } else {
      o[0] = (xyxy[0] + xyxy[2]) / C(2); o[1] = (xyxy[1] + xyxy[3]) / C(2);
      o[2] = xyxy[2] - xyxy[0]; o[3] = xyxy[3] - xyxy[1];
    }
  };
  if (!is_floating(d)) {
    // Integer boxes: exact between xyxy and xywh; through cxcywh torch's true
    // division and 0.5 * w make them float32.
    if (in_fmt != BoxFormat::CXCYWH && out_fmt != BoxFormat::CXCYWH) return map_boxes<int64_t>(boxes, d, convert);
    return map_boxes<float>(boxes, DType::Float32, convert);
  }
  return map_float_boxes(boxes, d, convert);
}

Tensor box_area(const Tensor& boxes, BoxFormat fmt, const Context& ctx) {
  check_boxes("box_area", "boxes", boxes);
  CUDA_ROUTE(detail::runs_on_cuda("box_area", boxes), box_area(boxes, fmt, ctx));
  const DType d = boxes.dtype();
  const DType out_dtype = is_half(d) ? DType::Float32 : is_small_int(d) ? DType::Int32 : d;
  std::vector<int64_t> shape(boxes.sizes().begin(), boxes.sizes().end() - 1);
  auto area = [fmt](auto* b, auto* o) {
    o[0] = fmt == BoxFormat::XYXY ? (b[2] - b[0]) * (b[3] - b[1]) : b[2] * b[3];
  };
  auto run = [&](auto tag) {
    using C = decltype(tag);
    const Tensor in = boxes.to(std::is_same_v<C, double> ? DType::Float64
                               : std::is_same_v<C, float> ? DType::Float32 : DType::Int64);
    Tensor out = Tensor::empty(shape, std::is_same_v<C, double> ? DType::Float64
                               : std::is_same_v<C, float> ? DType::Float32 : DType::Int64);
    const C* src = in.data<C>();
    C* dst = out.data<C>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i) area(src + 4 * i, dst + i);
    return out.to(out_dtype);
  };
  if (d == DType::Float64) return run(double{});
  if (is_floating(d)) return run(float{});
  return run(int64_t{});
}

Tensor clip_boxes_to_image(const Tensor& boxes, int64_t height, int64_t width, const Context& ctx) {
  check_boxes("clip_boxes_to_image", "boxes", boxes);
  CUDA_ROUTE(detail::runs_on_cuda("clip_boxes_to_image", boxes), clip_boxes_to_image(boxes, height, width, ctx));
  auto clip = [height, width](auto* b, auto* o) {
    using C = std::remove_const_t<std::remove_pointer_t<decltype(b)>>;
    const C lim[2] = {C(width), C(height)};
    // torch.clamp: NaN stays NaN.
    for (int c = 0; c < 4; ++c) o[c] = std::isnan(double(b[c])) ? b[c] : std::min(std::max(b[c], C(0)), lim[c % 2]);
  };
  if (!is_floating(boxes.dtype())) return map_boxes<int64_t>(boxes, boxes.dtype(), clip);
  return map_float_boxes(boxes, boxes.dtype(), clip);
}

Tensor remove_small_boxes(const Tensor& boxes, double min_size, const Context& ctx) {
  check_boxes("remove_small_boxes", "boxes", boxes);
  TVOPS_CHECK(boxes.dim() == 2, Value, "remove_small_boxes: boxes should be [N, 4], got ", boxes.describe());
  CUDA_ROUTE(detail::runs_on_cuda("remove_small_boxes", boxes), remove_small_boxes(boxes, min_size, ctx));
  // torchvision's test, ws >= min_size and hs >= min_size: torch subtracts in the boxes'
  // dtype and compares with min_size cast to it (integer boxes: in float32, torch's default
  // dtype). One pass counts, the second writes the output at its size.
  const int64_t n = boxes.size(0);
  auto select = [&](auto big) {
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) kept += big(i);
    Tensor out = Tensor::empty({kept}, DType::Int64);
    int64_t* o = out.data<int64_t>();
    for (int64_t i = 0; i < n; ++i)
      if (big(i)) *o++ = i;
    return out;
  };
  auto sides_at_least = [&](const auto* p, auto min, auto round) {
    return select([=](int64_t i) {
      const auto* q = p + 4 * i;
      return round(q[2] - q[0]) >= min && round(q[3] - q[1]) >= min;
    });
  };
  auto same = [](auto v) { return v; };
  const DType d = boxes.dtype();
  const Tensor b = d == DType::Float32 || d == DType::Float64 ? boxes.contiguous()
                   : is_floating(d)                          ? boxes.to(DType::Float32)
                                                             : boxes.to(DType::Int64);
  if (d == DType::Float64) return sides_at_least(b.data<double>(), min_size, same);
  if (d == DType::Float32) return sides_at_least(b.data<float>(), float(min_size), same);
  if (is_half(d)) {  // each difference rounded to the 16-bit type, as torch's sub does
    const bool bf16 = d == DType::BFloat16;
    auto round = [bf16](float v) {
      return bf16 ? bfloat16_to_float(float_to_bfloat16(v))
                  : half_to_float(float_to_half(v));
    };
    return sides_at_least(b.data<float>(), round(float(min_size)), round);
  }
  return sides_at_least(b.data<int64_t>(), float(min_size), [](int64_t v) { return float(v); });
}

namespace {

// Per-box values the pairwise formulas need, computed in T as torchvision does.
template <typename T>
struct BoxColumns {
  std::vector<T> x1, y1, x2, y2, area, cx, cy, atan_ratio;
  BoxColumns(const T* b, int64_t n) : x1(n), y1(n), x2(n), y2(n), area(n), cx(n), cy(n), atan_ratio(n) {
    for (int64_t i = 0; i < n; ++i) {
      x1[i] = b[4 * i]; y1[i] = b[4 * i + 1]; x2[i] = b[4 * i + 2]; y2[i] = b[4 * i + 3];
      const T w = x2[i] - x1[i], h = y2[i] - y1[i];
      area[i] = w * h;
      cx[i] = (x1[i] + x2[i]) / T(2);
      cy[i] = (y1[i] + y2[i]) / T(2);
      atan_ratio[i] = std::atan(w / h);
    }
  }
  cpu::BoxSoA<T> soa() const {
    return {x1.data(), y1.data(), x2.data(), y2.data(), area.data(), cx.data(), cy.data(), atan_ratio.data()};
  }
};

template <typename T>
void pairwise_typed(const Tensor& a, const Tensor& b, int64_t batch, int64_t n, int64_t m, BoxIouKind kind,
                    double eps, cpu::PairwiseBoxIou<T> kernel, Tensor& out) {
  for (int64_t g = 0; g < batch; ++g) {
    const BoxColumns<T> ca(a.data<T>() + g * n * 4, n), cb(b.data<T>() + g * m * 4, m);
    const cpu::BoxSoA<T> sa = ca.soa(), sb = cb.soa();
    T* o = out.data<T>() + g * n * m;
    // Rows in chunks of ~64k pairs spread over the pool.
    const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(m, 1));
    detail::parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) {
      kernel(sa, lo, hi, sb, m, static_cast<int>(kind), static_cast<T>(eps), o);
    });
  }
}

}  // namespace

Tensor pairwise_box_iou(const Tensor& boxes1, const Tensor& boxes2, BoxIouKind kind, double eps, const Context& ctx) {
  const char* op = kind == BoxIouKind::IoU ? "box_iou" : kind == BoxIouKind::Generalized ? "generalized_box_iou"
                   : kind == BoxIouKind::Distance ? "distance_box_iou" : "complete_box_iou";
  check_boxes(op, "boxes1", boxes1);
  check_boxes(op, "boxes2", boxes2);
  TVOPS_CHECK(boxes1.dim() >= 2 && boxes2.dim() == boxes1.dim(), Value, op,
              ": boxes1 and boxes2 should be [..., N, 4] and [..., M, 4] with the same leading dims, got ",
              boxes1.describe(), " and ", boxes2.describe());
  std::vector<int64_t> shape;
  int64_t batch = 1;
  for (int64_t d = 0; d + 2 < boxes1.dim(); ++d) {
    TVOPS_CHECK(boxes1.size(d) == boxes2.size(d), Value, op, ": leading dims differ: ", boxes1.describe(),
                " and ", boxes2.describe());
    shape.push_back(boxes1.size(d));
    batch *= boxes1.size(d);
  }
  const int64_t n = boxes1.size(-2), m = boxes2.size(-2);
  shape.push_back(n);
  shape.push_back(m);
  TVOPS_CHECK(boxes1.device() == boxes2.device(), Device, op, ": boxes1 and boxes2 must be on the same device, got ",
              device_name(boxes1.device()), " and ", device_name(boxes2.device()));
  CUDA_ROUTE(detail::runs_on_cuda(op, boxes1), pairwise_box_iou(boxes1, boxes2, shape, batch, n, m, kind, eps, ctx));
  const cpu::KernelTable& k = detail::cpu_kernels();
  const bool f64 = boxes1.dtype() == DType::Float64 && boxes2.dtype() == DType::Float64;
  // torch promotes mixed dtypes; float16/bfloat16/integers compute in float32
  // (integers in float64 for exact intersections, then float32 like torch's division).
  const bool ints = !is_floating(boxes1.dtype()) || !is_floating(boxes2.dtype());
  const DType compute = f64 || ints ? DType::Float64 : DType::Float32;
  const Tensor a = boxes1.to(compute), b = boxes2.to(compute);
  Tensor out = Tensor::empty(shape, compute);
  if (out.numel() == 0) return f64 ? out : out.to(DType::Float32);
  if (compute == DType::Float64)
    pairwise_typed<double>(a, b, batch, n, m, kind, eps, k.pairwise_box_iou_f64, out);
  else
    pairwise_typed<float>(a, b, batch, n, m, kind, eps, k.pairwise_box_iou_f32, out);
  return f64 ? out : out.to(DType::Float32);
}

}  // namespace tvops
