// tvops::Tensor: a typed, strided view of memory on the CPU or a CUDA device,
// with a shared owner that keeps the memory alive. Tensors move in and out of
// other frameworks (torch, numpy, CuPy, JAX) through DLPack without copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tvops/export.h"

struct DLManagedTensor;  // from <dlpack/dlpack.h>; only the pointer crosses this API

namespace tvops {

enum class DType : uint8_t {
  Bool, UInt8, Int8, Int16, UInt16, Int32, Int64, Float16, BFloat16, Float32, Float64,
};

TVOPS_API const char* dtype_name(DType dtype);  // "float32", ... (torch's spelling)
TVOPS_API std::size_t dtype_size(DType dtype);
inline bool is_floating(DType d) {
  return d == DType::Float16 || d == DType::BFloat16 || d == DType::Float32 || d == DType::Float64;
}

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;  // CUDA ordinal; 0 for the CPU
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};
TVOPS_API std::string device_name(Device device);  // "cpu", "cuda:1"

// Where output memory comes from. The default uses aligned host memory and
// cudaMallocAsync on the op's stream; framework adapters pass their own (torch's
// caching allocator) so tvops never fragments the caller's memory pool.
class TVOPS_API Allocator {
 public:
  virtual ~Allocator();
  // Returns memory and the owner that frees it when the last tensor using it dies.
  virtual std::shared_ptr<void> allocate(std::size_t bytes, Device device, void* stream) const = 0;
};

// Per-call settings. Zero/null members mean "the default".
struct Context {
  void* cuda_stream = nullptr;          // cudaStream_t the op runs on (null: legacy default stream)
  const Allocator* allocator = nullptr;  // null: tvops' own allocator
};

class TVOPS_API Tensor {
 public:
  Tensor() = default;

  // Allocates a contiguous tensor. Contents are uninitialised.
  static Tensor empty(std::vector<int64_t> shape, DType dtype, Device device = {},
                      const Context& ctx = {});
  static Tensor zeros(std::vector<int64_t> shape, DType dtype, Device device = {},
                      const Context& ctx = {});
  // Wraps memory owned elsewhere; `owner` (may be null) is kept alive with the tensor.
  // Empty `strides` means contiguous.
  static Tensor from_blob(void* data, std::vector<int64_t> shape, std::vector<int64_t> strides,
                          DType dtype, Device device, std::shared_ptr<void> owner = nullptr);

  // Takes ownership of a DLPack tensor (its deleter runs when the last view dies).
  // Throws tvops::Error for dtypes or devices tvops does not know.
  static Tensor from_dlpack(DLManagedTensor* managed);
  // Exports a view; the caller owns the result and must call its deleter.
  DLManagedTensor* to_dlpack() const;

  bool defined() const { return dtype_set_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t stride(int64_t d) const;
  const std::vector<int64_t>& sizes() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t numel() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;

  void* data_ptr() const { return data_; }
  template <typename T>
  T* data() const { return static_cast<T*>(data_); }

  // A contiguous CPU copy (or this tensor if it already is one). CUDA tensors:
  // contiguous() copies on the device on ctx's stream.
  Tensor contiguous(const Context& ctx = {}) const;
  // A contiguous CPU copy converted to float16, bfloat16, float32, float64, int32 or
  // int64 (from any dtype; to half types rounding to nearest even). Already of that
  // dtype: contiguous() (CUDA tensors: this tensor).
  Tensor to(DType dtype) const;

  const std::shared_ptr<void>& owner() const { return owner_; }
  std::string describe() const;  // "float32[3, 4] on cpu"

 private:
  void* data_ = nullptr;
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;
  DType dtype_ = DType::Float32;
  bool dtype_set_ = false;
  Device device_{};
  std::shared_ptr<void> owner_;
};

}  // namespace tvops
