// Helpers shared by the CUDA kernels (internal).
#pragma once

#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>

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

// Programmatic dependent launch (compute capability 9.0 and up). A kernel queued with
// launch_early() may start while the kernel before it on the stream still runs, once
// every block of that one has called let_next_start() (or exited). Before it reads what
// the earlier kernel writes it calls wait_for_prior(), which returns when that kernel has
// finished and its writes are visible. A kernel that is launched early must therefore
// call wait_for_prior() on every path before it exits, or work queued after it could
// overtake the earlier kernel. Both calls do nothing in a kernel launched the usual way.
__device__ inline void let_next_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}
__device__ inline void wait_for_prior() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
// Targets before 9.0 launch the usual way.
template <typename... Params, typename... Args>
void launch_early(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                  Args&&... args) {
  if constexpr (TVOPS_CUDA_ARCH < 90) {
    kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
    TVOPS_CUDA_CHECK(cudaGetLastError());
  } else {
    cudaLaunchAttribute early{};
    early.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    early.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    config.attrs = &early;
    config.numAttrs = 1;
    TVOPS_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
  }
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
