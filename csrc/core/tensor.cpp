#include "tvops/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/check.h"
#include "core/cuda_backend.h"
#include "core/half.h"
#include "core/host_allocator.h"

namespace tvops {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::Bool: return "bool";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::Int16: return "int16";
    case DType::UInt16: return "uint16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "unknown";
}

std::size_t dtype_size(DType d) {
  switch (d) {
    case DType::Bool: case DType::UInt8: case DType::Int8: return 1;
    case DType::Int16: case DType::UInt16: case DType::Float16: case DType::BFloat16: return 2;
    case DType::Int32: case DType::Float32: return 4;
    case DType::Int64: case DType::Float64: return 8;
  }
  return 0;
}

std::string device_name(Device d) {
  return d.is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(d.index);
}

Allocator::~Allocator() = default;

namespace {

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i] > 1 ? shape[i] : 1;
  }
  return strides;
}

int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) {
    TVOPS_CHECK(s >= 0, Value, "tensor sizes must be non-negative, got ", s);
    TVOPS_CHECK(s == 0 || n <= INT64_MAX / s, Value, "tensor of this shape has too many elements");
    n *= s;
  }
  return n;
}

std::shared_ptr<void> allocate_bytes(std::size_t bytes, Device device, const Context& ctx) {
  if (ctx.allocator) return ctx.allocator->allocate(bytes, device, ctx.cuda_stream);
  if (device.is_cuda()) return cuda::allocate(bytes, device.index, ctx.cuda_stream);
  return detail::allocate_host(bytes);
}

}  // namespace

Tensor Tensor::empty(std::vector<int64_t> shape, DType dtype, Device device, const Context& ctx) {
  int64_t n = checked_numel(shape);
  TVOPS_CHECK(static_cast<uint64_t>(n) <= SIZE_MAX / dtype_size(dtype), Value, "tensor too large");
  Tensor t;
  t.owner_ = allocate_bytes(static_cast<std::size_t>(n) * dtype_size(dtype), device, ctx);
  t.data_ = t.owner_.get();
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.dtype_set_ = true;
  t.device_ = device;
  return t;
}

Tensor Tensor::zeros(std::vector<int64_t> shape, DType dtype, Device device, const Context& ctx) {
  TVOPS_CHECK(device.is_cpu(), Device, "Tensor::zeros: only CPU tensors");
  Tensor t = empty(std::move(shape), dtype, device, ctx);
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::from_blob(void* data, std::vector<int64_t> shape, std::vector<int64_t> strides,
                         DType dtype, Device device, std::shared_ptr<void> owner) {
  checked_numel(shape);
  if (strides.empty()) strides = contiguous_strides(shape);
  TVOPS_CHECK(strides.size() == shape.size(), Value, "from_blob: ", strides.size(),
              " strides for ", shape.size(), " dimensions");
  Tensor t;
  t.data_ = data;
  t.shape_ = std::move(shape);
  t.strides_ = std::move(strides);
  t.dtype_ = dtype;
  t.dtype_set_ = true;
  t.device_ = device;
  t.owner_ = std::move(owner);
  return t;
}

int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  TVOPS_CHECK(d >= -n && d < n, Value, "dimension ", d, " out of range for a ", n, "-d tensor");
  return shape_[d < 0 ? d + n : d];
}

int64_t Tensor::stride(int64_t d) const {
  int64_t n = dim();
  TVOPS_CHECK(d >= -n && d < n, Value, "dimension ", d, " out of range for a ", n, "-d tensor");
  return strides_[d < 0 ? d + n : d];
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape_) n *= s;
  return n;
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (std::size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 0) return true;
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

Tensor Tensor::contiguous(const Context& ctx) const {
  if (is_contiguous()) return *this;
  Tensor out = empty(shape_, dtype_, device_, ctx);
  if (device_.is_cuda()) {
    cuda::copy_to_contiguous(*this, out.data_, ctx.cuda_stream);
    return out;
  }
  const std::size_t es = dtype_size(dtype_);
  const int64_t n = numel();
  const int64_t nd = dim();
  std::vector<int64_t> idx(nd, 0);
  auto* dst = static_cast<char*>(out.data_);
  const auto* src = static_cast<const char*>(data_);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int64_t d = 0; d < nd; ++d) off += idx[d] * strides_[d];
    std::memcpy(dst + i * es, src + off * static_cast<int64_t>(es), es);
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < shape_[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

namespace {
template <typename Dst>
void convert_from(const Tensor& src, Dst* dst) {
  const int64_t n = src.numel();
  switch (src.dtype()) {
    case DType::Float16: { auto* s = src.data<uint16_t>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(half_to_float(s[i])); break; }
    case DType::BFloat16: { auto* s = src.data<uint16_t>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(bfloat16_to_float(s[i])); break; }
    case DType::Float32: { auto* s = src.data<float>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(s[i]); break; }
    case DType::Float64: { auto* s = src.data<double>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(s[i]); break; }
    case DType::Bool: { auto* s = src.data<uint8_t>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(s[i] != 0); break; }
    case DType::UInt8: { auto* s = src.data<uint8_t>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(s[i]); break; }
    case DType::Int8: { auto* s = src.data<int8_t>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(s[i]); break; }
    case DType::Int16: { auto* s = src.data<int16_t>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(s[i]); break; }
    case DType::UInt16: { auto* s = src.data<uint16_t>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(s[i]); break; }
    case DType::Int32: { auto* s = src.data<int32_t>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(s[i]); break; }
    case DType::Int64: { auto* s = src.data<int64_t>(); for (int64_t i = 0; i < n; ++i) dst[i] = Dst(s[i]); break; }
  }
}
}  // namespace

Tensor Tensor::to(DType dtype) const {
  // Callers index the result as a dense array: a strided CPU view becomes a contiguous copy.
  if (dtype == dtype_) return device_.is_cpu() ? contiguous() : *this;
  TVOPS_CHECK(device_.is_cpu(), Device, "Tensor::to: only CPU tensors (", describe(), ")");
  Tensor src = contiguous();
  Tensor out = empty(shape_, dtype, device_);
  switch (dtype) {
    case DType::Float32: convert_from(src, out.data<float>()); break;
    case DType::Float64: convert_from(src, out.data<double>()); break;
    case DType::Int64: convert_from(src, out.data<int64_t>()); break;
    case DType::Int32: convert_from(src, out.data<int32_t>()); break;
    case DType::Float16:
    case DType::BFloat16: {
      const Tensor f = src.to(DType::Float32);  // no copy when src is float32 already
      const float* in = f.data<float>();
      auto* o = out.data<uint16_t>();
      const int64_t n = numel();
      if (dtype == DType::Float16)
        for (int64_t i = 0; i < n; ++i) o[i] = float_to_half(in[i]);
      else
        for (int64_t i = 0; i < n; ++i) o[i] = float_to_bfloat16(in[i]);
      break;
    }
    default: detail::fail(ErrorKind::Type, "Tensor::to: cannot convert to ", dtype_name(dtype));
  }
  return out;
}

std::string Tensor::describe() const {
  std::ostringstream os;
  os << dtype_name(dtype_) << "[";
  for (std::size_t i = 0; i < shape_.size(); ++i) os << (i ? ", " : "") << shape_[i];
  os << "] on " << device_name(device_);
  return os.str();
}

}  // namespace tvops
