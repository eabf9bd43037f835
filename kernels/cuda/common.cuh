// Helpers shared by the CUDA kernels (internal).
#pragma once

#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

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

// Function attributes last for the process, and each get or set costs 1-5 us of host
// time (roi_align's launch path spent ~9 of its ~20 us on them every call). They are
// set only when the value changes, per kernel and device; the dynamic shared memory
// limit only when it must grow.
inline cudaError_t set_kernel_attribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  static std::mutex mutex;
  static std::map<std::tuple<const void*, int, int>, int> current;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return cudaGetLastError();
  std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(kernel, device, int(attribute));
  const auto it = current.find(key);
  if (it != current.end() &&
      (attribute == cudaFuncAttributeMaxDynamicSharedMemorySize ? it->second >= value : it->second == value))
    return cudaSuccess;
  const cudaError_t err = cudaFuncSetAttribute(kernel, attribute, value);
  if (err == cudaSuccess) current[key] = value;
  return err;
}

// A kernel's static shared memory on the current device (cudaFuncGetAttributes, once).
inline cudaError_t kernel_static_smem(const void* kernel, std::size_t& bytes) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, std::size_t> known;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return cudaGetLastError();
  std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(kernel, device);
  const auto it = known.find(key);
  if (it != known.end()) {
    bytes = it->second;
    return cudaSuccess;
  }
  cudaFuncAttributes attr;
  const cudaError_t err = cudaFuncGetAttributes(&attr, kernel);
  if (err == cudaSuccess) bytes = known[key] = attr.sharedSizeBytes;
  return err;
}

// Lets `kernel` take `bytes` of dynamic shared memory: an opt-in where they and its
// static shared memory exceed 48 KB together.
template <typename Kernel>
void allow_dynamic_smem(Kernel kernel, std::size_t bytes) {
  std::size_t static_bytes = 0;
  if (bytes > 0 && kernel_static_smem(reinterpret_cast<const void*>(kernel), static_bytes) != cudaSuccess)
    cudaGetLastError();
  if (bytes + static_bytes > 48 * 1024)
    TVOPS_CUDA_CHECK(set_kernel_attribute(reinterpret_cast<const void*>(kernel),
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

// Streaming multiprocessors of `device` (grids sized in waves).
inline int sm_count(int device) {
  int n = 0;
  TVOPS_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
  return n;
}

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
