// Box utilities on CUDA (float32 / float64 boxes): format conversion, areas, clipping,
// small-box removal, and the pairwise IoU family with torchvision's formulas in the
// same operation order as the CPU kernels (kernels/cpu/box_iou.cpp).
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include <cmath>
#include <cstdint>

#include "core/cuda_backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace tvops::cuda {

namespace {

template <typename T>
__device__ inline void to_xyxy(const T* b, BoxFormat fmt, T* o) {
  if (fmt == BoxFormat::XYXY) {
    o[0] = b[0], o[1] = b[1], o[2] = b[2], o[3] = b[3];
  } else if (fmt == BoxFormat::XYWH) {
    o[0] = b[0], o[1] = b[1], o[2] = b[0] + b[2], o[3] = b[1] + b[3];
  } else {
    const T hw = T(0.5) * b[2], hh = T(0.5) * b[3];
    o[0] = b[0] - hw, o[1] = b[1] - hh, o[2] = b[0] + hw, o[3] = b[1] + hh;
  }
}

template <typename T>
__global__ void convert_kernel(const T* in, int64_t n, BoxFormat from, BoxFormat to, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T* b = in + 4 * i;
    T* o = out + 4 * i;
    if (from == to) {
      for (int c = 0; c < 4; ++c) o[c] = b[c];
      continue;
    }
    T x[4];
    to_xyxy(b, from, x);
    if (to == BoxFormat::XYXY) {
      for (int c = 0; c < 4; ++c) o[c] = x[c];
    } else if (to == BoxFormat::XYWH) {
      o[0] = x[0], o[1] = x[1], o[2] = x[2] - x[0], o[3] = x[3] - x[1];
    } else {
      o[0] = (x[0] + x[2]) / T(2), o[1] = (x[1] + x[3]) / T(2), o[2] = x[2] - x[0], o[3] = x[3] - x[1];
    }
  }
}

template <typename T>
__global__ void area_kernel(const T* in, int64_t n, BoxFormat fmt, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T* b = in + 4 * i;
    out[i] = fmt == BoxFormat::XYXY ? (b[2] - b[0]) * (b[3] - b[1]) : b[2] * b[3];
  }
}

template <typename T>
__global__ void clip_kernel(const T* in, int64_t n, T height, T width, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < 4 * n; i += int64_t(gridDim.x) * blockDim.x) {
    const T v = in[i], lim = i % 2 ? height : width;
    out[i] = isnan(v) ? v : (v < T(0) ? T(0) : v > lim ? lim : v);  // torch.clamp keeps NaN
  }
}

// remove_small_boxes' test of box i, torchvision's: both sides at least min_size, in T
// (torch compares a tensor with a Python float in the tensor's dtype).
template <typename T>
struct BigEnough {
  const T* boxes;
  T min_size;
  __device__ bool operator()(int64_t i) const {
    const T* b = boxes + 4 * i;
    return b[2] - b[0] >= min_size && b[3] - b[1] >= min_size;
  }
};

// One output per thread: box i of set a against box j of set b, in group g.
template <typename T, int Kind>
__global__ void pairwise_kernel(const T* a, const T* b, int64_t batch, int64_t n, int64_t m, T eps, T* out) {
  const int64_t total = batch * n * m;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = idx % m, i = (idx / m) % n, g = idx / (n * m);
    const T* p = a + 4 * (g * n + i);
    const T* q = b + 4 * (g * m + j);
    const T area_a = (p[2] - p[0]) * (p[3] - p[1]), area_b = (q[2] - q[0]) * (q[3] - q[1]);
    const T w = max(min(p[2], q[2]) - max(p[0], q[0]), T(0));
    const T h = max(min(p[3], q[3]) - max(p[1], q[1]), T(0));
    const T inter = w * h, uni = (area_a + area_b) - inter, iou = inter / uni;
    T r = iou;
    if (Kind > 0) {
      const T wi = max(max(p[2], q[2]) - min(p[0], q[0]), T(0));
      const T hi = max(max(p[3], q[3]) - min(p[1], q[1]), T(0));
      if (Kind == 1) {
        const T area_i = wi * hi;
        r = iou - (area_i - uni) / area_i;
      } else {
        const T diag = (wi * wi + hi * hi) + eps;
        const T dx = (p[0] + p[2]) / T(2) - (q[0] + q[2]) / T(2), dy = (p[1] + p[3]) / T(2) - (q[1] + q[3]) / T(2);
        const T diou = iou - (dx * dx + dy * dy) / diag;
        r = diou;
        if (Kind == 3) {
          const T d = atan((p[2] - p[0]) / (p[3] - p[1])) - atan((q[2] - q[0]) / (q[3] - q[1]));
          const T v = T(4.0 / (3.14159265358979323846 * 3.14159265358979323846)) * (d * d);
          const T alpha = v / (((T(1) - iou) + v) + eps);
          r = diou - alpha * v;
        }
      }
    }
    out[idx] = r;
  }
}

// Runs fn(T tag) for a float32 or float64 CUDA tensor.
template <typename F>
Tensor dispatch_float(const char* op, const Tensor& t, F&& f) {
  if (t.dtype() == DType::Float32) return f(float{});
  if (t.dtype() == DType::Float64) return f(double{});
  detail::fail(ErrorKind::Unsupported, op, ": CUDA box ops take float32 or float64 boxes, got ", dtype_name(t.dtype()),
               " (convert them, or use the CPU)");
}

// The elementwise ops: an output of `shape` (the boxes' dtype and device) that
// launch(T tag, const T* boxes, int64_t boxes_count, T* out, stream) fills.
template <typename Launch>
Tensor elementwise(const char* op, const Tensor& boxes_in, std::vector<int64_t> shape, const Context& ctx,
                   Launch&& launch) {
  DeviceGuard guard(boxes_in.device().index);
  const Tensor boxes = boxes_in.contiguous(ctx);
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  return dispatch_float(op, boxes, [&](auto tag) {
    using T = decltype(tag);
    Tensor out = Tensor::empty(shape, boxes.dtype(), boxes.device(), ctx);
    const int64_t n = boxes.numel() / 4;
    if (n > 0) launch(tag, boxes.data<T>(), n, out.data<T>(), stream);
    TVOPS_CUDA_CHECK(cudaGetLastError());
    return out;
  });
}

}  // namespace

Tensor box_convert(const Tensor& boxes, BoxFormat in_fmt, BoxFormat out_fmt, const Context& ctx) {
  return elementwise("box_convert", boxes, boxes.sizes(), ctx, [&](auto, const auto* in, int64_t n, auto* out,
                                                                  cudaStream_t stream) {
    convert_kernel<<<grid_stride_blocks(n, kElementwise), kElementwise, 0, stream>>>(in, n, in_fmt, out_fmt, out);
  });
}

Tensor box_area(const Tensor& boxes, BoxFormat fmt, const Context& ctx) {
  std::vector<int64_t> shape(boxes.sizes().begin(), boxes.sizes().end() - 1);
  return elementwise("box_area", boxes, shape, ctx, [&](auto, const auto* in, int64_t n, auto* out,
                                                         cudaStream_t stream) {
    area_kernel<<<grid_stride_blocks(n, kElementwise), kElementwise, 0, stream>>>(in, n, fmt, out);
  });
}

Tensor clip_boxes_to_image(const Tensor& boxes, int64_t height, int64_t width, const Context& ctx) {
  return elementwise("clip_boxes_to_image", boxes, boxes.sizes(), ctx, [&](auto tag, const auto* in, int64_t n,
                                                                          auto* out, cudaStream_t stream) {
    using T = decltype(tag);
    clip_kernel<<<grid_stride_blocks(4 * n, kElementwise), kElementwise, 0, stream>>>(in, n, T(height), T(width), out);
  });
}

Tensor remove_small_boxes(const Tensor& boxes_in, double min_size, const Context& ctx) {
  const int device = boxes_in.device().index;
  DeviceGuard guard(device);
  const Tensor boxes = boxes_in.contiguous(ctx);
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const int64_t n = boxes.size(0);
  if (n == 0) return Tensor::empty({0}, DType::Int64, boxes.device(), ctx);
  // One select over the indices (no flag or index arrays) straight into an output sized for
  // every box; the host waits once, for the count, and returns its first `kept` entries.
  Tensor all = Tensor::empty({n}, DType::Int64, boxes.device(), ctx);
  Scratch count{allocate(sizeof(int64_t), device, stream)};
  dispatch_float("remove_small_boxes", boxes, [&](auto tag) {
    using T = decltype(tag);
    const BigEnough<T> keep{boxes.data<T>(), static_cast<T>(min_size)};
    const thrust::counting_iterator<int64_t> indices(0);
    std::size_t temp_bytes = 0;
    TVOPS_CUDA_CHECK(cub::DeviceSelect::If(nullptr, temp_bytes, indices, all.data<int64_t>(), count.get<int64_t>(), n,
                                           keep, stream));
    Scratch temp{allocate(temp_bytes, device, stream)};
    TVOPS_CUDA_CHECK(cub::DeviceSelect::If(temp.get<void>(), temp_bytes, indices, all.data<int64_t>(),
                                           count.get<int64_t>(), n, keep, stream));
    return Tensor();
  });
  int64_t kept = 0;
  copy_to_host_sync(&kept, count.get<int64_t>(), sizeof(kept), stream);
  return Tensor::from_blob(all.data_ptr(), {kept}, {}, DType::Int64, all.device(), all.owner());
}

Tensor pairwise_box_iou(const Tensor& a_in, const Tensor& b_in, const std::vector<int64_t>& shape, int64_t batch,
                        int64_t n, int64_t m, BoxIouKind kind, double eps, const Context& ctx) {
  DeviceGuard guard(a_in.device().index);
  TVOPS_CHECK(a_in.dtype() == b_in.dtype(), Type, "pairwise box IoU: CUDA boxes1 and boxes2 must have the same dtype, got ",
              dtype_name(a_in.dtype()), " and ", dtype_name(b_in.dtype()));
  const Tensor a = a_in.contiguous(ctx), b = b_in.contiguous(ctx);
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  return dispatch_float("pairwise box IoU", a, [&](auto tag) {
    using T = decltype(tag);
    Tensor out = Tensor::empty(shape, a.dtype(), a.device(), ctx);
    const int64_t total = batch * n * m;
    if (total == 0) return out;
    const T e = static_cast<T>(eps);
    const unsigned g = grid_stride_blocks(total);
    switch (kind) {
      case BoxIouKind::IoU: pairwise_kernel<T, 0><<<g, kElementwise, 0, stream>>>(a.data<T>(), b.data<T>(), batch, n, m, e, out.data<T>()); break;
      case BoxIouKind::Generalized: pairwise_kernel<T, 1><<<g, kElementwise, 0, stream>>>(a.data<T>(), b.data<T>(), batch, n, m, e, out.data<T>()); break;
      case BoxIouKind::Distance: pairwise_kernel<T, 2><<<g, kElementwise, 0, stream>>>(a.data<T>(), b.data<T>(), batch, n, m, e, out.data<T>()); break;
      default: pairwise_kernel<T, 3><<<g, kElementwise, 0, stream>>>(a.data<T>(), b.data<T>(), batch, n, m, e, out.data<T>()); break;
    }
    TVOPS_CUDA_CHECK(cudaGetLastError());
    return out;
  });
}

}  // namespace tvops::cuda
