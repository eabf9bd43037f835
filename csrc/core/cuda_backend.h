// The few CUDA runtime services the core needs. Built from kernels/cuda/runtime.cu
// when the build has CUDA targets, else from csrc/core/cuda_backend_none.cpp, whose
// functions throw a clear "built without CUDA" error.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "tvops/tensor.h"

namespace tvops::cuda {

bool built_with_cuda();
std::string toolkit_version();  // "13.0", or "" without CUDA
// Device memory on `stream` (stream-ordered), freed when the owner dies.
std::shared_ptr<void> allocate(std::size_t bytes, int device, void* stream);
// Copies `bytes` from a CUDA device to host memory and waits for it (sizing outputs).
void copy_to_host_sync(void* dst, const void* src, std::size_t bytes, void* stream);
// Copies a strided CUDA tensor into contiguous device memory `dst` on `stream`.
void copy_to_contiguous(const Tensor& src, void* dst, void* stream);
// Compute capability of a device as major*10+minor; throws if there is no such device.
int device_compute_capability(int device, std::string* name = nullptr);

}  // namespace tvops::cuda
