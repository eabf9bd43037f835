// libtorch <-> libtvops for the tvops_torch adapter: tensors cross through DLPack
// (no copies), CUDA work runs on torch's current stream of the tensor's device with
// outputs from torch's caching allocator, and tvops::Error becomes torch's
// c10::ValueError / TypeError / Error so TorchScript and Python see the usual types.
#pragma once

#include <ATen/DLConvertor.h>
#include <ATen/core/Tensor.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <utility>

#include "tvops/tvops.h"

namespace tvops_torch {

// CUDA outputs as torch tensors' storage (at::empty: the caching allocator, the
// current stream); other devices keep tvops' allocator.
class TorchAllocator final : public tvops::Allocator {
 public:
  std::shared_ptr<void> allocate(std::size_t bytes, tvops::Device device, void* stream) const override;
};

inline tvops::Tensor from_torch(const at::Tensor& t) { return tvops::Tensor::from_dlpack(at::toDLPack(t)); }
inline at::Tensor to_torch(const tvops::Tensor& t) { return at::fromDLPack(t.to_dlpack()); }

// The Context of a call whose tensors live where `like` does.
inline tvops::Context context_for(const at::Tensor& like) {
  static const TorchAllocator allocator;
  tvops::Context ctx;
  if (like.is_cuda()) {
    c10::impl::VirtualGuardImpl guard(c10::DeviceType::CUDA);
    ctx.cuda_stream = guard.getStream(like.device()).native_handle();
    ctx.allocator = &allocator;
  }
  return ctx;
}

// Runs fn(), turning tvops::Error into torch's error types (same message).
template <typename Fn>
auto translate_errors(Fn&& fn) -> decltype(fn()) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const tvops::Error& e) {
    if (e.kind() == tvops::ErrorKind::Value) TORCH_CHECK_VALUE(false, e.what());
    if (e.kind() == tvops::ErrorKind::Type) TORCH_CHECK_TYPE(false, e.what());
    TORCH_CHECK(false, e.what());
  }
}

}  // namespace tvops_torch
