// Helpers shared by the CUDA kernels (internal).
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "core/check.h"
#include "kernels/cuda/arch_tuning.cuh"

#define TVOPS_CUDA_CHECK(expr)                                                              \
  do {                                                                                      \
    cudaError_t err_ = (expr);                                                              \
    if (err_ != cudaSuccess)                                                                \
      ::tvops::detail::fail(::tvops::ErrorKind::Runtime, "CUDA error in ", #expr, ": ",    \
                            cudaGetErrorString(err_));                                      \
  } while (0)

namespace tvops::cuda {

// Makes `device` current for the scope and restores the caller's device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    cudaError_t err = cudaGetDevice(&previous_);
    if (err != cudaSuccess) {
      cudaGetLastError();
      detail::fail(ErrorKind::Device, "no usable CUDA device: ", cudaGetErrorString(err));
    }
    if (previous_ != device) TVOPS_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

// Threads of the grid-stride element-wise kernels (this SM target's row).
constexpr int kElementwise = kTune.elementwise_threads;

inline unsigned blocks_for(long long n, int threads) {
  long long b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

// Blocks for a grid-stride loop over n items: enough to fill the GPU, no more.
inline unsigned grid_stride_blocks(long long n, int threads = kElementwise) {
  const unsigned b = blocks_for(n, threads);
  return b > 4096 ? 4096 : b;
}

// Owner of a temporary device buffer (from allocate(), stream-ordered).
struct Scratch {
  std::shared_ptr<void> owner;
  template <typename T>
  T* get() const { return static_cast<T*>(owner.get()); }
};

}  // namespace tvops::cuda
