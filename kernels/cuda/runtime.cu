// The core's CUDA services (see csrc/core/cuda_backend.h).
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/cuda_backend.h"
#include "kernels/cuda/common.cuh"

namespace tvops::cuda {

bool built_with_cuda() { return true; }

std::string toolkit_version() {
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
}

namespace {

// The default stream-ordered pool returns its memory to the driver at every
// synchronisation (release threshold 0), so a call after a sync maps fresh pages for
// each output: ~0.2 ms for the 100 MB of an ra7 forward. Keep freed blocks cached
// instead, as torch's caching allocator does (cudaMemPoolTrimTo gives them back).
void keep_pool_cached(int device) {
  static std::mutex mutex;
  static std::vector<bool> done;
  std::lock_guard<std::mutex> lock(mutex);
  if (done.size() <= static_cast<std::size_t>(device)) done.resize(device + 1, false);
  if (done[device]) return;
  done[device] = true;
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
    uint64_t threshold = UINT64_MAX;
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
  }
  cudaGetLastError();  // a device without pools keeps the default; not an error for the caller
}

}  // namespace

std::shared_ptr<void> allocate(std::size_t bytes, int device, void* stream) {
  DeviceGuard guard(device);
  keep_pool_cached(device);
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

namespace {

constexpr int kMaxDims = 8;
struct StridedLayout {
  int dims;
  int64_t sizes[kMaxDims];
  int64_t strides[kMaxDims];  // in elements
};

// One thread per output element: unravel its index, gather through the strides.
template <typename Word>
__global__ void gather_strided(const Word* src, Word* dst, StridedLayout layout, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rest = i, offset = 0;
    for (int d = layout.dims - 1; d >= 0; --d) {
      offset += (rest % layout.sizes[d]) * layout.strides[d];
      rest /= layout.sizes[d];
    }
    dst[i] = src[offset];
  }
}

}  // namespace

void copy_to_contiguous(const Tensor& src, void* dst, void* stream) {
  TVOPS_CHECK(src.dim() <= kMaxDims, Value, "contiguous(): CUDA tensors of more than ", kMaxDims, " dimensions");
  const int64_t n = src.numel();
  if (n == 0) return;
  DeviceGuard guard(src.device().index);
  StridedLayout layout{static_cast<int>(src.dim()), {}, {}};
  for (int d = 0; d < layout.dims; ++d) {
    layout.sizes[d] = src.size(d);
    layout.strides[d] = src.stride(d);
  }
  auto s = static_cast<cudaStream_t>(stream);
  const unsigned grid = blocks_for(n, 256) > 4096 ? 4096 : blocks_for(n, 256);
  switch (dtype_size(src.dtype())) {
    case 1: gather_strided<<<grid, 256, 0, s>>>(src.data<uint8_t>(), static_cast<uint8_t*>(dst), layout, n); break;
    case 2: gather_strided<<<grid, 256, 0, s>>>(src.data<uint16_t>(), static_cast<uint16_t*>(dst), layout, n); break;
    case 4: gather_strided<<<grid, 256, 0, s>>>(src.data<uint32_t>(), static_cast<uint32_t*>(dst), layout, n); break;
    default: gather_strided<<<grid, 256, 0, s>>>(src.data<uint64_t>(), static_cast<uint64_t*>(dst), layout, n); break;
  }
  TVOPS_CUDA_CHECK(cudaGetLastError());
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
