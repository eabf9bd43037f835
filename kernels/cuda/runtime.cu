// The core's CUDA services (see csrc/core/cuda_backend.h).
#include <string>

#include "core/cuda_backend.h"
#include "kernels/cuda/common.cuh"

namespace tvops::cuda {

bool built_with_cuda() { return true; }

std::string toolkit_version() {
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
}

std::shared_ptr<void> allocate(std::size_t bytes, int device, void* stream) {
  DeviceGuard guard(device);
  void* p = nullptr;
  auto s = static_cast<cudaStream_t>(stream);
  if (bytes) TVOPS_CUDA_CHECK(cudaMallocAsync(&p, bytes, s));
  return std::shared_ptr<void>(p, [device, s](void* q) {
    if (!q) return;
    int previous = 0;
    cudaGetDevice(&previous);
    cudaSetDevice(device);
    cudaFreeAsync(q, s);
    cudaSetDevice(previous);
  });
}

void copy_to_host_sync(void* dst, const void* src, std::size_t bytes, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  TVOPS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  TVOPS_CUDA_CHECK(cudaStreamSynchronize(s));
}

int device_compute_capability(int device, std::string* name) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" state for later calls
    detail::fail(ErrorKind::Device, "no usable CUDA device: ", cudaGetErrorString(err));
  }
  TVOPS_CHECK(device >= 0 && device < count, Device, "CUDA device ", device, " does not exist (", count,
              " visible)");
  cudaDeviceProp prop;
  TVOPS_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  if (name) *name = prop.name;
  return prop.major * 10 + prop.minor;
}

}  // namespace tvops::cuda
