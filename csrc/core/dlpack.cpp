// DLPack import/export: tensors from torch, numpy, CuPy or JAX pass in and out
// without copies. The memory stays owned by the producer's deleter.
#include <dlpack/dlpack.h>

#include "core/check.h"
#include "tvops/tensor.h"

// dlpack < 0.8 has no kDLBool; the code value is fixed by the standard.
#define TVOPS_DL_BOOL 6

namespace tvops {

namespace {

DType dtype_from_dl(DLDataType t) {
  TVOPS_CHECK(t.lanes == 1, Type, "DLPack tensors with ", t.lanes, " lanes are not supported");
  switch (t.code) {
    case kDLFloat:
      if (t.bits == 16) return DType::Float16;
      if (t.bits == 32) return DType::Float32;
      if (t.bits == 64) return DType::Float64;
      break;
    case kDLBfloat:
      if (t.bits == 16) return DType::BFloat16;
      break;
    case kDLInt:
      if (t.bits == 8) return DType::Int8;
      if (t.bits == 16) return DType::Int16;
      if (t.bits == 32) return DType::Int32;
      if (t.bits == 64) return DType::Int64;
      break;
    case kDLUInt:
      if (t.bits == 8) return DType::UInt8;
      if (t.bits == 16) return DType::UInt16;
      if (t.bits == 1) return DType::Bool;
      break;
    case TVOPS_DL_BOOL:
      if (t.bits == 8) return DType::Bool;
      break;
    default:
      break;
  }
  detail::fail(ErrorKind::Type, "DLPack dtype (code ", int(t.code), ", ", int(t.bits),
               " bits) is not supported");
}

DLDataType dl_from_dtype(DType d) {
  DLDataType t;
  t.lanes = 1;
  t.bits = static_cast<uint8_t>(dtype_size(d) * 8);
  switch (d) {
    case DType::Bool: t.code = TVOPS_DL_BOOL; break;
    case DType::UInt8: case DType::UInt16: t.code = kDLUInt; break;
    case DType::Int8: case DType::Int16: case DType::Int32: case DType::Int64: t.code = kDLInt; break;
    case DType::BFloat16: t.code = kDLBfloat; break;
    default: t.code = kDLFloat; break;
  }
  return t;
}

// What an exported DLManagedTensor carries: the shape arrays and a reference to
// the tensor's memory, released by the consumer through the deleter.
struct ExportContext {
  Tensor tensor;
  std::vector<int64_t> shape, strides;
};

void delete_exported(DLManagedTensor* self) {
  delete static_cast<ExportContext*>(self->manager_ctx);
  delete self;
}

}  // namespace

Tensor Tensor::from_dlpack(DLManagedTensor* managed) {
  TVOPS_CHECK(managed != nullptr, Value, "from_dlpack: null DLManagedTensor");
  // Own it first, so an error below still runs the producer's deleter.
  std::shared_ptr<void> owner(managed, [](void* p) {
    auto* m = static_cast<DLManagedTensor*>(p);
    if (m->deleter) m->deleter(m);
  });
  const DLTensor& t = managed->dl_tensor;
  Device device;
  switch (t.device.device_type) {
    case kDLCPU: case kDLCUDAHost: device = Device{DeviceType::CPU, 0}; break;
    case kDLCUDA: case kDLCUDAManaged: device = Device{DeviceType::CUDA, t.device.device_id}; break;
    default:
      detail::fail(ErrorKind::Device, "from_dlpack: device type ", int(t.device.device_type),
                   " is not supported (CPU and CUDA are)");
  }
  TVOPS_CHECK(t.ndim >= 0, Value, "from_dlpack: negative ndim");
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  std::vector<int64_t> strides;
  if (t.strides) strides.assign(t.strides, t.strides + t.ndim);
  DType dtype = dtype_from_dl(t.dtype);
  void* data = static_cast<char*>(t.data) + t.byte_offset;
  return from_blob(data, std::move(shape), std::move(strides), dtype, device, std::move(owner));
}

DLManagedTensor* Tensor::to_dlpack() const {
  TVOPS_CHECK(defined(), Value, "to_dlpack: undefined tensor");
  auto ctx = std::make_unique<ExportContext>();
  ctx->tensor = *this;
  ctx->shape = shape_;
  ctx->strides = strides_;
  auto managed = std::make_unique<DLManagedTensor>();
  DLTensor& t = managed->dl_tensor;
  t.data = data_;
  t.device.device_type = device_.is_cpu() ? kDLCPU : kDLCUDA;
  t.device.device_id = device_.index;
  t.ndim = static_cast<int32_t>(shape_.size());
  t.dtype = dl_from_dtype(dtype_);
  t.shape = ctx->shape.data();
  t.strides = ctx->strides.data();
  t.byte_offset = 0;
  managed->manager_ctx = ctx.release();
  managed->deleter = delete_exported;
  return managed.release();
}

}  // namespace tvops
