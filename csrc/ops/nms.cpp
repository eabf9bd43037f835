// nms and batched_nms front-ends: torchvision's argument checks and messages, then
// the kernels of the active CPU tier or CUDA.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"

#include "core/check.h"
#include "dispatch/cpu_isa.h"
#include "ops/device_check.h"
#include "ops/score_order.h"
#include "tvops/ops.h"
#include "tvops/runtime.h"

#if defined(TVOPS_WITH_CUDA)
#include "kernels/cuda/ops.h"
#endif

namespace tvops {

namespace {

void check_nms_args(const char* op, const Tensor& boxes, const Tensor& scores) {
  TVOPS_CHECK(boxes.defined(), Value, op, ": boxes is undefined");
  TVOPS_CHECK(scores.defined(), Value, op, ": scores is undefined");
  TVOPS_CHECK(boxes.dim() == 2, Value, op, ": boxes should be a 2d tensor, got ", boxes.dim(), "D");
  TVOPS_CHECK(boxes.size(1) == 4, Value, op, ": boxes should have 4 elements in dimension 1, got ", boxes.size(1));
  TVOPS_CHECK(scores.dim() == 1, Value, op, ": scores should be a 1d tensor, got ", scores.dim(), "D");
  TVOPS_CHECK(boxes.size(0) == scores.size(0), Value, op,
              ": boxes and scores should have same number of elements in dimension 0, got ", boxes.size(0),
              " and ", scores.size(0));
  TVOPS_CHECK(is_floating(boxes.dtype()), Type, op, ": boxes must be a floating point tensor, got ",
              dtype_name(boxes.dtype()));
  TVOPS_CHECK(boxes.dtype() == scores.dtype(), Type, op, ": boxes should have the same type as scores, got ",
              dtype_name(boxes.dtype()), " and ", dtype_name(scores.dtype()));
  TVOPS_CHECK(boxes.device() == scores.device(), Device, op, ": boxes and scores must be on the same device, got ",
              device_name(boxes.device()), " and ", device_name(scores.device()));
}

// float16/bfloat16 are computed in float32; everything is made contiguous.
Tensor compute_view(const Tensor& t) {
  if (t.dtype() == DType::Float16 || t.dtype() == DType::BFloat16) return t.to(DType::Float32);
  return t.contiguous();
}

template <typename T>
using NmsKernel = void (*)(const T*, int64_t, double, uint8_t*);

// The kept entries of `order` (keep[r] for its r-th entry), as an int64 tensor.
Tensor kept_indices(const detail::UninitVector<int64_t>& order, const detail::UninitVector<uint8_t>& keep,
                    const Context& ctx) {
  int64_t kept = 0;
  for (uint8_t k : keep) kept += k;
  Tensor out = Tensor::empty({kept}, DType::Int64, Device{}, ctx);
  int64_t* o = out.data<int64_t>();
  for (std::size_t r = 0; r < order.size(); ++r)
    if (keep[r]) *o++ = order[r];
  return out;
}

template <typename T>
Tensor nms_cpu(const T* boxes, const Tensor& scores, double iou_threshold, NmsKernel<T> kernel,
               const Context& ctx) {
  const int64_t n = scores.numel();
  const detail::UninitVector<int64_t> order = detail::descending_order(scores);
  detail::UninitVector<T> sorted(4 * n);
  for (int64_t r = 0; r < n; ++r) std::memcpy(&sorted[4 * r], boxes + 4 * order[r], 4 * sizeof(T));
  detail::UninitVector<uint8_t> keep(n);
  kernel(sorted.data(), n, iou_threshold, keep.data());
  return kept_indices(order, keep, ctx);
}

// torchvision's coordinate trick: shift each category by idx * (max coordinate + 1)
// and run one nms. Done in T exactly as torchvision does, so rounding matches too.
template <typename T>
Tensor batched_nms_offset(const T* boxes, const Tensor& scores, const std::vector<double>& idxs,
                          double iou_threshold, NmsKernel<T> kernel, const Context& ctx) {
  const int64_t n = scores.numel();
  T max_coord = boxes[0];
  for (int64_t i = 0; i < 4 * n; ++i)
    if (std::isnan(boxes[i]) || boxes[i] > max_coord) max_coord = boxes[i];  // torch.max propagates NaN
  const T step = max_coord + T(1);
  std::vector<T> shifted(4 * n);
  for (int64_t i = 0; i < n; ++i) {
    const T offset = static_cast<T>(idxs[i]) * step;
    for (int c = 0; c < 4; ++c) shifted[4 * i + c] = boxes[4 * i + c] + offset;
  }
  return nms_cpu<T>(shifted.data(), scores, iou_threshold, kernel, ctx);
}

// Maps category values to 0..K-1 in increasing order (NaN -> -1); returns K. Integer
// categories in a compact range use a table; anything else sorts the distinct values.
int64_t dense_class_ids(const std::vector<double>& idxs, detail::UninitVector<int64_t>& ids) {
  const int64_t n = static_cast<int64_t>(idxs.size());
  ids.assign(n, -1);
  double lo = INFINITY, hi = -INFINITY;
  bool integral = true;
  for (double v : idxs) {
    if (std::isnan(v)) continue;
    integral = integral && v == std::floor(v);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!(lo <= hi)) return 0;  // no category at all
  if (integral && hi - lo < double(4 * n + 1024)) {
    std::vector<int64_t> table(static_cast<std::size_t>(hi - lo) + 1, -1);
    for (double v : idxs)
      if (!std::isnan(v)) table[static_cast<std::size_t>(v - lo)] = 0;
    int64_t k = 0;
    for (int64_t& t : table)
      if (t == 0) t = k++;
    for (int64_t i = 0; i < n; ++i)
      if (!std::isnan(idxs[i])) ids[i] = table[static_cast<std::size_t>(idxs[i] - lo)];
    return k;
  }
  std::vector<double> values;
  for (double v : idxs)
    if (!std::isnan(v)) values.push_back(v);
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  for (int64_t i = 0; i < n; ++i)
    if (!std::isnan(idxs[i])) ids[i] = std::lower_bound(values.begin(), values.end(), idxs[i]) - values.begin();
  return static_cast<int64_t>(values.size());
}

// The same for integer categories (the usual dtype): a table over their range when
// it is compact, else through the general path.
int64_t dense_class_ids(const int64_t* idxs, int64_t n, detail::UninitVector<int64_t>& ids) {
  int64_t lo = idxs[0], hi = idxs[0];
  for (int64_t i = 1; i < n; ++i) lo = std::min(lo, idxs[i]), hi = std::max(hi, idxs[i]);
  if (double(hi) - double(lo) >= double(4 * n + 1024)) {
    const std::vector<double> values(idxs, idxs + n);  // exact for |v| < 2^53, as torch's own float compare
    return dense_class_ids(values, ids);
  }
  std::vector<int64_t> table(static_cast<std::size_t>(hi - lo) + 1, 0);  // 1: the value occurs
  for (int64_t i = 0; i < n; ++i) table[idxs[i] - lo] = 1;
  int64_t k = 0;
  for (int64_t& t : table) t = t ? k++ : -1;
  ids.resize(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = table[idxs[i] - lo];
  return k;
}

// Per-category nms (torchvision's strategy above 1000 boxes): one sort, boxes
// grouped by category in score order, categories spread over the thread pool.
template <typename T>
Tensor batched_nms_per_class(const T* boxes, const Tensor& scores, const detail::UninitVector<int64_t>& class_id,
                             int64_t num_classes, double iou_threshold, NmsKernel<T> kernel, const Context& ctx) {
  const int64_t n = scores.numel();
  const detail::UninitVector<int64_t> order = detail::descending_order(scores);

  // Slots grouped by category, score order inside each group (a counting sort of the
  // ranks by category: the counts need no order, so one pass in score order places
  // every box); slot[r] = -1 for boxes of no category.
  std::vector<int64_t> start(num_classes + 1, 0);
  for (int64_t i = 0; i < n; ++i)
    if (class_id[i] >= 0) ++start[class_id[i] + 1];
  for (int64_t c = 0; c < num_classes; ++c) start[c + 1] += start[c];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  detail::UninitVector<int64_t> slot(n);
  detail::UninitVector<T> grouped(4 * start[num_classes]);
  for (int64_t r = 0; r < n; ++r) {
    const int64_t c = class_id[order[r]];
    slot[r] = c < 0 ? -1 : fill[c]++;
    if (c >= 0) std::memcpy(&grouped[4 * slot[r]], boxes + 4 * order[r], 4 * sizeof(T));
  }

  detail::UninitVector<uint8_t> keep_slot(start[num_classes]);
  detail::parallel_for(0, num_classes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c)
      kernel(&grouped[4 * start[c]], start[c + 1] - start[c], iou_threshold, &keep_slot[start[c]]);
  });
  // The kept boxes in score order.
  int64_t kept = 0;
  for (uint8_t k : keep_slot) kept += k;
  Tensor out = Tensor::empty({kept}, DType::Int64, Device{}, ctx);
  int64_t* o = out.data<int64_t>();
  for (int64_t r = 0; r < n; ++r)
    if (slot[r] >= 0 && keep_slot[slot[r]]) *o++ = order[r];
  return out;
}

}  // namespace

Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold, const Context& ctx) {
  check_nms_args("nms", boxes, scores);
  if (detail::runs_on_cuda("nms", boxes)) {
#if defined(TVOPS_WITH_CUDA)
    return cuda::nms(boxes, scores, iou_threshold, ctx);
#endif
  }
  if (boxes.numel() == 0) return Tensor::empty({0}, DType::Int64, boxes.device(), ctx);
  const cpu::KernelTable& k = detail::cpu_kernels();
  const Tensor b = compute_view(boxes), s = compute_view(scores);
  if (b.dtype() == DType::Float64) return nms_cpu<double>(b.data<double>(), s, iou_threshold, k.nms_sorted_f64, ctx);
  return nms_cpu<float>(b.data<float>(), s, iou_threshold, k.nms_sorted_f32, ctx);
}

Tensor batched_nms(const Tensor& boxes, const Tensor& scores, const Tensor& idxs, double iou_threshold,
                   const Context& ctx) {
  check_nms_args("batched_nms", boxes, scores);
  TVOPS_CHECK(idxs.defined() && idxs.dim() == 1 && idxs.size(0) == boxes.size(0), Value,
              "batched_nms: idxs should be a 1d tensor with one category per box (", boxes.size(0), "), got ",
              idxs.defined() ? idxs.describe() : std::string("undefined"));
  TVOPS_CHECK(idxs.device() == boxes.device(), Device, "batched_nms: idxs must be on the boxes' device (",
              device_name(boxes.device()), "), got ", device_name(idxs.device()));
  if (detail::runs_on_cuda("batched_nms", boxes)) {
#if defined(TVOPS_WITH_CUDA)
    return cuda::batched_nms(boxes, scores, idxs, iou_threshold, ctx);
#endif
  }
  if (boxes.numel() == 0) return Tensor::empty({0}, DType::Int64, boxes.device(), ctx);
  const cpu::KernelTable& k = detail::cpu_kernels();
  const Tensor b = compute_view(boxes), s = compute_view(scores);
  // torchvision switches strategy at boxes.numel() > 4000 on the CPU.
  if (boxes.numel() > 4000) {
    // Dense category ids; NaN categories match nothing in torchvision and are dropped (-1).
    detail::UninitVector<int64_t> class_id;
    int64_t num_classes;
    if (is_floating(idxs.dtype())) {
      const Tensor id = idxs.to(DType::Float64);
      num_classes = dense_class_ids(std::vector<double>(id.data<double>(), id.data<double>() + id.numel()), class_id);
    } else {
      const Tensor id = idxs.to(DType::Int64);
      num_classes = dense_class_ids(id.data<int64_t>(), id.numel(), class_id);
    }
    if (b.dtype() == DType::Float64)
      return batched_nms_per_class<double>(b.data<double>(), s, class_id, num_classes, iou_threshold,
                                           k.nms_sorted_f64, ctx);
    return batched_nms_per_class<float>(b.data<float>(), s, class_id, num_classes, iou_threshold, k.nms_sorted_f32,
                                        ctx);
  }
  const Tensor id = idxs.to(DType::Float64);
  const std::vector<double> ids(id.data<double>(), id.data<double>() + id.numel());
  if (b.dtype() == DType::Float64)
    return batched_nms_offset<double>(b.data<double>(), s, ids, iou_threshold, k.nms_sorted_f64, ctx);
  return batched_nms_offset<float>(b.data<float>(), s, ids, iou_threshold, k.nms_sorted_f32, ctx);
}

}  // namespace tvops
