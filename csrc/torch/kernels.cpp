// torchvision's operator schemas (namespace torchvision, as libtorchvision registers
// them) with CPU and CUDA kernels from libtvops: a TorchScript model that calls
// torchvision.ops runs in a C++ program linked to libtorch and tvops_torch, without
// libtorchvision. Schemas are torchvision's (see OPS.md section 0.1); autograd.cpp
// adds the Autograd kernels.
#include <torch/library.h>

#include <string>

#include "bridge.h"

namespace tvops_torch {

std::shared_ptr<void> TorchAllocator::allocate(std::size_t bytes, tvops::Device device, void* /*stream*/) const {
  if (!device.is_cuda()) return tvops::Tensor::empty({static_cast<int64_t>(bytes)}, tvops::DType::UInt8).owner();
  // at::empty allocates from the caching allocator for the device's current stream,
  // the stream context_for() gave the kernel.
  at::Tensor storage = at::empty({static_cast<int64_t>(bytes)},
                                 at::TensorOptions().dtype(at::kByte).device(at::kCUDA, device.index));
  void* data = storage.data_ptr();
  return std::shared_ptr<void>(data, [storage](void*) mutable { storage.reset(); });
}

namespace {

std::tuple<at::Tensor, at::Tensor> to_torch_pair(const std::pair<tvops::Tensor, tvops::Tensor>& p) {
  return {tvops_torch::to_torch(p.first), tvops_torch::to_torch(p.second)};
}

at::Tensor nms(const at::Tensor& dets, const at::Tensor& scores, double iou_threshold) {
  return translate_errors([&] {
    return to_torch(tvops::nms(from_torch(dets), from_torch(scores), iou_threshold, context_for(dets)));
  });
}

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
                     int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  return translate_errors([&] {
    return to_torch(tvops::roi_align(from_torch(input), from_torch(rois), spatial_scale, pooled_height, pooled_width,
                                     sampling_ratio, aligned, context_for(input)));
  });
}

bool deterministic(const at::Tensor& grad) {
  return grad.is_cuda() && at::globalContext().deterministicAlgorithms();
}

at::Tensor roi_align_backward(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                              int64_t pooled_height, int64_t pooled_width, int64_t batch_size, int64_t channels,
                              int64_t height, int64_t width, int64_t sampling_ratio, bool aligned) {
  return translate_errors([&] {
    return to_torch(tvops::roi_align_backward(from_torch(grad), from_torch(rois), spatial_scale, pooled_height,
                                              pooled_width, batch_size, channels, height, width, sampling_ratio,
                                              aligned, deterministic(grad), context_for(grad)));
  });
}

std::tuple<at::Tensor, at::Tensor> roi_pool(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                                            int64_t pooled_height, int64_t pooled_width) {
  return translate_errors([&] {
    return to_torch_pair(tvops::roi_pool(
        from_torch(input), from_torch(rois), spatial_scale, pooled_height, pooled_width, context_for(input)));
  });
}

at::Tensor roi_pool_backward(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& argmax,
                             double spatial_scale, int64_t pooled_height, int64_t pooled_width, int64_t batch_size,
                             int64_t channels, int64_t height, int64_t width) {
  return translate_errors([&] {
    return to_torch(tvops::roi_pool_backward(from_torch(grad), from_torch(rois), from_torch(argmax), spatial_scale,
                                             pooled_height, pooled_width, batch_size, channels, height, width,
                                             deterministic(grad), context_for(grad)));
  });
}

std::tuple<at::Tensor, at::Tensor> ps_roi_align(const at::Tensor& input, const at::Tensor& rois,
                                                double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                                                int64_t sampling_ratio) {
  return translate_errors([&] {
    return to_torch_pair(tvops::ps_roi_align(
        from_torch(input), from_torch(rois), spatial_scale, pooled_height, pooled_width, sampling_ratio,
        context_for(input)));
  });
}

at::Tensor ps_roi_align_backward(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& channel_mapping,
                                 double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                                 int64_t sampling_ratio, int64_t batch_size, int64_t channels, int64_t height,
                                 int64_t width) {
  return translate_errors([&] {
    return to_torch(tvops::ps_roi_align_backward(from_torch(grad), from_torch(rois), from_torch(channel_mapping),
                                                 spatial_scale, pooled_height, pooled_width, sampling_ratio,
                                                 batch_size, channels, height, width, deterministic(grad),
                                                 context_for(grad)));
  });
}

std::tuple<at::Tensor, at::Tensor> ps_roi_pool(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                                               int64_t pooled_height, int64_t pooled_width) {
  return translate_errors([&] {
    return to_torch_pair(tvops::ps_roi_pool(
        from_torch(input), from_torch(rois), spatial_scale, pooled_height, pooled_width, context_for(input)));
  });
}

at::Tensor ps_roi_pool_backward(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& channel_mapping,
                                double spatial_scale, int64_t pooled_height, int64_t pooled_width, int64_t batch_size,
                                int64_t channels, int64_t height, int64_t width) {
  return translate_errors([&] {
    return to_torch(tvops::ps_roi_pool_backward(from_torch(grad), from_torch(rois), from_torch(channel_mapping),
                                                spatial_scale, pooled_height, pooled_width, batch_size, channels,
                                                height, width, deterministic(grad), context_for(grad)));
  });
}

at::Tensor deform_conv2d(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                         const at::Tensor& mask, const at::Tensor& bias, int64_t stride_h, int64_t stride_w,
                         int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t groups,
                         int64_t offset_groups, bool use_mask) {
  return translate_errors([&] {
    // CUDA float32 may use TF32 where torch lets its own convolutions.
    const bool tf32 = !input.is_cuda() || at::globalContext().allowTF32CuDNN();
    return to_torch(tvops::deform_conv2d(from_torch(input), from_torch(weight), from_torch(offset),
                                         use_mask ? from_torch(mask) : tvops::Tensor(), from_torch(bias), stride_h,
                                         stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups,
                                         use_mask, tf32, context_for(input)));
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> deform_conv2d_backward(
    const at::Tensor& grad, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
    const at::Tensor& mask, const at::Tensor& bias, int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
    int64_t dilation_h, int64_t dilation_w, int64_t groups, int64_t offset_groups, bool use_mask) {
  return translate_errors([&] {
    const bool tf32 = !grad.is_cuda() || at::globalContext().allowTF32CuDNN();
    const auto g = tvops::deform_conv2d_backward(
        from_torch(grad), from_torch(input), from_torch(weight), from_torch(offset),
        use_mask ? from_torch(mask) : tvops::Tensor(), from_torch(bias), stride_h, stride_w, pad_h, pad_w, dilation_h,
        dilation_w, groups, offset_groups, use_mask, tf32, context_for(grad));
    return std::make_tuple(to_torch(g[0]), to_torch(g[1]), to_torch(g[2]),
                           g[3].defined() ? to_torch(g[3]) : at::zeros_like(mask), to_torch(g[4]));
  });
}

// torchvision.extension checks this against torch's CUDA version (-1: CPU-only build).
int64_t cuda_version() {
  const std::string& v = tvops::build_info().cuda_version;  // "13.0", or "" without CUDA
  if (v.empty()) return -1;
  const auto dot = v.find('.');
  return std::stoll(v.substr(0, dot)) * 1000 + (dot == std::string::npos ? 0 : std::stoll(v.substr(dot + 1)) * 10);
}

}  // namespace
}  // namespace tvops_torch

using namespace tvops_torch;  // NOLINT: the kernels above, for the registrations

TORCH_LIBRARY(torchvision, m) {
  m.def("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor");
  m.def("roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
        "int sampling_ratio, bool aligned) -> Tensor");
  m.def("_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, int sampling_ratio, "
        "bool aligned) -> Tensor");
  m.def("roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) -> "
        "(Tensor, Tensor)");
  m.def("_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor");
  m.def("ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
        "int sampling_ratio) -> (Tensor, Tensor)");
  m.def("_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
        "SymInt pooled_height, SymInt pooled_width, int sampling_ratio, SymInt batch_size, SymInt channels, "
        "SymInt height, SymInt width) -> Tensor");
  m.def("ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) -> "
        "(Tensor, Tensor)");
  m.def("_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
        "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, "
        "SymInt width) -> Tensor");
  m.def("deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, "
        "SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, "
        "SymInt offset_groups, bool use_mask) -> Tensor");
  m.def("_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor mask, "
        "Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, "
        "SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> (Tensor, Tensor, Tensor, "
        "Tensor, Tensor)");
  m.def("_cuda_version() -> int", &cuda_version);
}

// The same kernels for both devices: tvops routes by the tensors' device.
#define TVOPS_TORCH_KERNELS(m)                                          \
  m.impl("nms", TORCH_FN(nms));                                         \
  m.impl("roi_align", TORCH_FN(roi_align));                             \
  m.impl("_roi_align_backward", TORCH_FN(roi_align_backward));          \
  m.impl("roi_pool", TORCH_FN(roi_pool));                               \
  m.impl("_roi_pool_backward", TORCH_FN(roi_pool_backward));            \
  m.impl("ps_roi_align", TORCH_FN(ps_roi_align));                       \
  m.impl("_ps_roi_align_backward", TORCH_FN(ps_roi_align_backward));    \
  m.impl("ps_roi_pool", TORCH_FN(ps_roi_pool));                         \
  m.impl("_ps_roi_pool_backward", TORCH_FN(ps_roi_pool_backward));     \
  m.impl("deform_conv2d", TORCH_FN(deform_conv2d));                     \
  m.impl("_deform_conv2d_backward", TORCH_FN(deform_conv2d_backward))

TORCH_LIBRARY_IMPL(torchvision, CPU, m) { TVOPS_TORCH_KERNELS(m); }
TORCH_LIBRARY_IMPL(torchvision, CUDA, m) { TVOPS_TORCH_KERNELS(m); }
