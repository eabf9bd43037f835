// tvops::Tensor: allocation, shapes and strides, contiguous copies, dtype
// conversion, and DLPack import/export (ownership and error paths included).
#include <dlpack/dlpack.h>
#include <gtest/gtest.h>
#include <tvops/tvops.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

namespace {

using tvops::DType;
using tvops::Tensor;

const std::vector<DType> kAllDTypes = {DType::Bool,   DType::UInt8,    DType::Int8,    DType::Int16,
                                       DType::UInt16, DType::Int32,    DType::Int64,   DType::Float16,
                                       DType::BFloat16, DType::Float32, DType::Float64};

// Row-major strides with torch's convention: a dimension of size 0 or 1 counts as 1.
std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t step = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    s[i] = step;
    step *= std::max<int64_t>(shape[i], 1);
  }
  return s;
}

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  EXPECT_TRUE(t.is_contiguous());
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

// Runs fn, which must throw tvops::Error of `kind`.
template <typename Fn>
void expect_error(Fn fn, tvops::ErrorKind kind, const char* what) {
  try {
    fn();
    ADD_FAILURE() << "no tvops::Error for " << what;
  } catch (const tvops::Error& e) {
    EXPECT_EQ(e.kind(), kind) << what << ": " << e.what();
  }
}

// ---------------------------------------------------------------- shapes ----

TEST(Tensor, DefaultConstructedIsUndefined) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_EQ(t.data_ptr(), nullptr);
}

TEST(Tensor, EmptyHasRowMajorLayout) {
  Tensor t = Tensor::empty({2, 3, 4}, DType::Float32);
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.dtype(), DType::Float32);
  EXPECT_TRUE(t.device().is_cpu());
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(t.strides(), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 24u * 4u);
  EXPECT_TRUE(t.is_contiguous());
  ASSERT_NE(t.data_ptr(), nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % alignof(std::max_align_t), 0u);
  // The memory is really there: write every byte.
  std::memset(t.data_ptr(), 0xAB, t.nbytes());
}

TEST(Tensor, EmptyStridesForEveryDtype) {
  for (DType dt : kAllDTypes) {
    Tensor t = Tensor::empty({5, 7}, dt);
    EXPECT_EQ(t.strides(), (std::vector<int64_t>{7, 1})) << tvops::dtype_name(dt);
    EXPECT_EQ(t.nbytes(), 35u * tvops::dtype_size(dt)) << tvops::dtype_name(dt);
  }
}

TEST(Tensor, SizeOneDimensions) {
  Tensor t = Tensor::empty({2, 1, 3}, DType::Int16);
  EXPECT_EQ(t.strides(), row_major_strides({2, 1, 3}));
  EXPECT_EQ(t.numel(), 6);
  EXPECT_TRUE(t.is_contiguous());
  // The stride of a size-1 dimension is never used to address memory, so any value
  // keeps the view contiguous (torch's rule).
  int16_t buf[6] = {};
  Tensor v = Tensor::from_blob(buf, {2, 1, 3}, {3, 1000, 1}, DType::Int16, {});
  EXPECT_TRUE(v.is_contiguous());
  Tensor ones = Tensor::empty({1, 1, 1}, DType::Float64);
  EXPECT_EQ(ones.numel(), 1);
  EXPECT_TRUE(ones.is_contiguous());
}

TEST(Tensor, SizeZeroDimensions) {
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{0}, {2, 0, 3}, {0, 5}, {4, 0}}) {
    Tensor t = Tensor::empty(shape, DType::Float32);
    EXPECT_EQ(t.numel(), 0);
    EXPECT_EQ(t.nbytes(), 0u);
    EXPECT_EQ(t.sizes(), shape);
    EXPECT_EQ(t.strides(), row_major_strides(shape));
    EXPECT_TRUE(t.is_contiguous());
    Tensor z = Tensor::zeros(shape, DType::Int64);
    EXPECT_EQ(z.numel(), 0);
  }
  // An empty view is contiguous whatever its strides say.
  Tensor v = Tensor::from_blob(nullptr, {3, 0}, {7, 9}, DType::Float32, {});
  EXPECT_TRUE(v.is_contiguous());
}

TEST(Tensor, ZeroDimensionalTensorIsAScalar) {
  Tensor t = Tensor::zeros({}, DType::Float64);
  EXPECT_EQ(t.dim(), 0);
  EXPECT_EQ(t.numel(), 1);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(*t.data<double>(), 0.0);
}

TEST(Tensor, ZerosAreZeroForEveryDtype) {
  for (DType dt : kAllDTypes) {
    Tensor t = Tensor::zeros({3, 5}, dt);
    const auto* bytes = static_cast<const unsigned char*>(t.data_ptr());
    for (std::size_t i = 0; i < t.nbytes(); ++i) ASSERT_EQ(bytes[i], 0) << tvops::dtype_name(dt) << " byte " << i;
  }
}

TEST(Tensor, FromBlobWrapsWithoutCopying) {
  std::vector<float> data(12);
  std::iota(data.begin(), data.end(), 0.f);
  Tensor t = Tensor::from_blob(data.data(), {3, 4}, {}, DType::Float32, {});
  EXPECT_EQ(t.data_ptr(), data.data());
  EXPECT_EQ(t.strides(), (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(t.numel(), 12);
  EXPECT_TRUE(t.is_contiguous());
  data[5] = 42.f;
  EXPECT_EQ(t.data<float>()[5], 42.f);

  Tensor s = Tensor::from_blob(data.data(), {3, 2}, {4, 2}, DType::Float32, {});
  EXPECT_EQ(s.strides(), (std::vector<int64_t>{4, 2}));
  EXPECT_FALSE(s.is_contiguous());
}

TEST(Tensor, FromBlobKeepsTheOwnerAliveUntilTheLastCopyDies) {
  int released = 0;
  auto* buf = new float[4]{};
  {
    std::shared_ptr<void> owner(buf, [&released](void* p) {
      ++released;
      delete[] static_cast<float*>(p);
    });
    Tensor a = Tensor::from_blob(buf, {4}, {}, DType::Float32, {}, owner);
    owner.reset();
    Tensor b = a;
    a = Tensor();
    EXPECT_EQ(released, 0);
    EXPECT_EQ(b.data<float>()[3], 0.f);
  }
  EXPECT_EQ(released, 1);
}

TEST(Tensor, FromBlobRejectsMismatchedStrides) {
  float x[6];
  expect_error([&] { Tensor::from_blob(x, {2, 3}, {3}, DType::Float32, {}); }, tvops::ErrorKind::Value,
               "1 stride for 2 dims");
}

TEST(Tensor, NegativeSizesThrow) {
  float x[4];
  expect_error([] { Tensor::empty({2, -1}, DType::Float32); }, tvops::ErrorKind::Value, "empty({2, -1})");
  expect_error([] { Tensor::empty({-3}, DType::Int64); }, tvops::ErrorKind::Value, "empty({-3})");
  expect_error([] { Tensor::zeros({-1, 0}, DType::Float32); }, tvops::ErrorKind::Value, "zeros({-1, 0})");
  expect_error([&] { Tensor::from_blob(x, {-4}, {}, DType::Float32, {}); }, tvops::ErrorKind::Value,
               "from_blob({-4})");
}

TEST(Tensor, ElementCountOverflowThrows) {
  const int64_t big = int64_t(1) << 40;
  expect_error([&] { Tensor::empty({big, big}, DType::UInt8); }, tvops::ErrorKind::Value, "2^80 elements");
  // 2^62 float64 elements fit in int64 but not in a size_t byte count.
  expect_error([] { Tensor::empty({int64_t(1) << 62}, DType::Float64); }, tvops::ErrorKind::Value,
               "2^65 bytes");
}

TEST(Tensor, SizeAndStrideAcceptNegativeDims) {
  Tensor t = Tensor::empty({2, 3, 5}, DType::Float32);
  EXPECT_EQ(t.size(-1), 5);
  EXPECT_EQ(t.size(-2), 3);
  EXPECT_EQ(t.size(-3), 2);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(2), 5);
  EXPECT_EQ(t.stride(-1), 1);
  EXPECT_EQ(t.stride(-3), 15);
  for (int64_t d : {3, 4, -4, -100}) {
    expect_error([&] { t.size(d); }, tvops::ErrorKind::Value, "size(out of range)");
    expect_error([&] { t.stride(d); }, tvops::ErrorKind::Value, "stride(out of range)");
  }
  Tensor scalar = Tensor::empty({}, DType::Float32);
  expect_error([&] { scalar.size(0); }, tvops::ErrorKind::Value, "size(0) of a 0-d tensor");
  expect_error([&] { scalar.size(-1); }, tvops::ErrorKind::Value, "size(-1) of a 0-d tensor");
}

TEST(Tensor, CudaTensorsAreNotTouchedOnTheHost) {
  // A view of (pretend) device memory: host-side conversions refuse instead of reading it.
  const tvops::Device cuda0{tvops::DeviceType::CUDA, 0};
  Tensor t = Tensor::from_blob(reinterpret_cast<void*>(0x1000), {2, 3}, {1, 2}, DType::Float16, cuda0);
  EXPECT_FALSE(t.is_contiguous());
  expect_error([&] { t.to(DType::Float32); }, tvops::ErrorKind::Device, "to() of a CUDA tensor");
  // (contiguous() of a CUDA view copies on the device: tested with real CUDA tensors in tests/python.)
  expect_error([&] { Tensor::zeros({2}, DType::Float32, cuda0); }, tvops::ErrorKind::Device, "zeros on CUDA");
}

TEST(Tensor, DescribeNamesDtypeShapeAndDevice) {
  EXPECT_EQ(Tensor::empty({3, 4}, DType::Float32).describe(), "float32[3, 4] on cpu");
  EXPECT_EQ(Tensor::from_blob(nullptr, {2}, {}, DType::BFloat16, {tvops::DeviceType::CUDA, 1}).describe(),
            "bfloat16[2] on cuda:1");
}

// ------------------------------------------------------------ contiguous ----

TEST(Tensor, ContiguousOfContiguousIsTheSameTensor) {
  Tensor t = Tensor::empty({4, 4}, DType::Float32);
  EXPECT_EQ(t.contiguous().data_ptr(), t.data_ptr());
}

TEST(Tensor, ContiguousCopiesATransposedView) {
  // a = [[0, 1, 2], [3, 4, 5]]; its transpose is [[0, 3], [1, 4], [2, 5]].
  std::vector<float> a = {0, 1, 2, 3, 4, 5};
  Tensor t = Tensor::from_blob(a.data(), {3, 2}, {1, 3}, DType::Float32, {});
  ASSERT_FALSE(t.is_contiguous());
  Tensor c = t.contiguous();
  EXPECT_NE(c.data_ptr(), t.data_ptr());
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(c.strides(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(values_of<float>(c), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(a, (std::vector<float>{0, 1, 2, 3, 4, 5}));  // the source is untouched
}

TEST(Tensor, ContiguousCopiesAPermutedStridedView) {
  // x has shape [2, 3, 4] (x[i][j][k] = 100i + 10j + k); view it as x.permute(2, 0, 1)
  // restricted to every other k: shape [2, 2, 3], strides [2, 12, 4].
  std::vector<int64_t> x(24);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) x[12 * i + 4 * j + k] = 100 * i + 10 * j + k;
  Tensor v = Tensor::from_blob(x.data(), {2, 2, 3}, {2, 12, 4}, DType::Int64, {});
  ASSERT_FALSE(v.is_contiguous());
  std::vector<int64_t> expected;
  for (int k = 0; k < 4; k += 2)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) expected.push_back(100 * i + 10 * j + k);
  EXPECT_EQ(values_of<int64_t>(v.contiguous()), expected);
}

TEST(Tensor, ContiguousCopiesTwoByteElements) {
  std::vector<uint16_t> a = {10, 11, 12, 13, 14, 15, 16, 17};
  Tensor v = Tensor::from_blob(a.data(), {4}, {2}, DType::Float16, {});  // every other element
  EXPECT_EQ(values_of<uint16_t>(v.contiguous()), (std::vector<uint16_t>{10, 12, 14, 16}));
}

// -------------------------------------------------------------- to(dtype) ----

// float16 bit patterns and their values, worked out from the IEEE binary16 layout
// (1 sign, 5 exponent bits with bias 15, 10 mantissa bits).
TEST(TensorTo, Float16ToFloat32) {
  struct Case { uint16_t bits; float value; };
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<Case> cases = {
      {0x3C00, 1.0f},
      {0xC000, -2.0f},
      {0x3800, 0.5f},
      {0x3E00, 1.5f},
      {0x3555, std::ldexp(1024.f + 0x155, -12)},  // (1 + 341/1024) * 2^-2 ~ 0.33325
      {0x7BFF, 65504.0f},                          // largest finite half
      {0x0400, std::ldexp(1.0f, -14)},             // smallest normal
      {0x0001, std::ldexp(1.0f, -24)},             // smallest subnormal
      {0x0200, std::ldexp(1.0f, -15)},             // subnormal, top mantissa bit
      {0x03FF, std::ldexp(1023.0f, -24)},          // largest subnormal
      {0x8001, -std::ldexp(1.0f, -24)},
      {0x7C00, inf},
      {0xFC00, -inf},
      {0x0000, 0.0f},
  };
  std::vector<uint16_t> bits;
  for (const Case& c : cases) bits.push_back(c.bits);
  bits.push_back(0x8000);  // -0
  bits.push_back(0x7E00);  // quiet NaN
  bits.push_back(0x7C01);  // signalling NaN: still NaN, not inf
  Tensor h = Tensor::from_blob(bits.data(), {int64_t(bits.size())}, {}, DType::Float16, {});
  Tensor f = h.to(DType::Float32);
  ASSERT_EQ(f.dtype(), DType::Float32);
  ASSERT_EQ(f.sizes(), h.sizes());
  const float* out = f.data<float>();
  for (std::size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(out[i], cases[i].value) << std::hex << "half 0x" << cases[i].bits;
  const std::size_t n = cases.size();
  EXPECT_EQ(out[n], 0.0f);
  EXPECT_TRUE(std::signbit(out[n])) << "half 0x8000 is -0";
  EXPECT_TRUE(std::isnan(out[n + 1]));
  EXPECT_TRUE(std::isnan(out[n + 2]));
}

TEST(TensorTo, BFloat16ToFloat32) {
  // bfloat16 is the top half of a float32.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<uint16_t> bits = {0x3F80, 0xC000, 0x4049, 0x7F80, 0xFF80, 0x0001, 0x0080, 0x0000};
  std::vector<float> expected = {1.0f, -2.0f, 3.140625f, inf, -inf,
                                 std::ldexp(1.0f, -133),  // smallest bf16 subnormal
                                 std::ldexp(1.0f, -126),  // smallest bf16 normal
                                 0.0f};
  bits.push_back(0x7FC0);  // NaN
  Tensor b = Tensor::from_blob(bits.data(), {int64_t(bits.size())}, {}, DType::BFloat16, {});
  Tensor f = b.to(DType::Float32);
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(f.data<float>()[i], expected[i]) << std::hex << "bf16 0x" << bits[i];
  EXPECT_TRUE(std::isnan(f.data<float>()[expected.size()]));
}

TEST(TensorTo, Float64ToFloat32RoundsToNearest) {
  std::vector<double> d = {1.5, -0.25, 1e40, -1e40, 1e-50, 1.0 + std::ldexp(1.0, -30), 16777217.0};
  Tensor f = Tensor::from_blob(d.data(), {int64_t(d.size())}, {}, DType::Float64, {}).to(DType::Float32);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(values_of<float>(f), (std::vector<float>{1.5f, -0.25f, inf, -inf, 0.0f, 1.0f, 16777216.0f}));
}

TEST(TensorTo, Int64ToFloat32) {
  std::vector<int64_t> v = {0, -7, 1 << 24, (1 << 24) + 1, (1 << 24) + 3, std::numeric_limits<int64_t>::max()};
  Tensor f = Tensor::from_blob(v.data(), {int64_t(v.size())}, {}, DType::Int64, {}).to(DType::Float32);
  // 2^24 + 1 ties to the even 2^24; 2^24 + 3 ties to the even 2^24 + 4; INT64_MAX rounds to 2^63.
  EXPECT_EQ(values_of<float>(f),
            (std::vector<float>{0.f, -7.f, 16777216.f, 16777216.f, 16777220.f, std::ldexp(1.0f, 63)}));
}

TEST(TensorTo, ConvertsANonContiguousSourceInLogicalOrder) {
  // half values 1, 2, 3, 4 in a 2x2 buffer, viewed transposed: [[1, 3], [2, 4]].
  std::vector<uint16_t> bits = {0x3C00, 0x4000, 0x4200, 0x4400};
  Tensor t = Tensor::from_blob(bits.data(), {2, 2}, {1, 2}, DType::Float16, {});
  Tensor f = t.to(DType::Float32);
  EXPECT_TRUE(f.is_contiguous());
  EXPECT_EQ(values_of<float>(f), (std::vector<float>{1.f, 3.f, 2.f, 4.f}));
}

TEST(TensorTo, FloatToInt64Truncates) {
  std::vector<float> v = {2.7f, -2.7f, 0.0f, 1e6f};
  Tensor i = Tensor::from_blob(v.data(), {4}, {}, DType::Float32, {}).to(DType::Int64);
  EXPECT_EQ(values_of<int64_t>(i), (std::vector<int64_t>{2, -2, 0, 1000000}));
}

TEST(TensorTo, SameDtypeIsTheSameTensor) {
  Tensor t = Tensor::empty({3}, DType::Float16);
  EXPECT_EQ(t.to(DType::Float16).data_ptr(), t.data_ptr());
}

TEST(TensorTo, EmptyTensorConverts) {
  Tensor t = Tensor::empty({0, 3}, DType::Float16);
  Tensor f = t.to(DType::Float32);
  EXPECT_EQ(f.dtype(), DType::Float32);
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{0, 3}));
}

// ---------------------------------------------------------------- DLPack ----

// The DLPack type of each DType, from the DLPack standard (kDLBool = 6 since 0.8).
DLDataType expected_dl_dtype(DType d) {
  switch (d) {
    case DType::Bool: return {6, 8, 1};
    case DType::UInt8: return {kDLUInt, 8, 1};
    case DType::Int8: return {kDLInt, 8, 1};
    case DType::Int16: return {kDLInt, 16, 1};
    case DType::UInt16: return {kDLUInt, 16, 1};
    case DType::Int32: return {kDLInt, 32, 1};
    case DType::Int64: return {kDLInt, 64, 1};
    case DType::Float16: return {kDLFloat, 16, 1};
    case DType::BFloat16: return {kDLBfloat, 16, 1};
    case DType::Float32: return {kDLFloat, 32, 1};
    case DType::Float64: return {kDLFloat, 64, 1};
  }
  return {0, 0, 0};
}

TEST(DLPack, ExportDescribesTheTensor) {
  for (DType dt : kAllDTypes) {
    SCOPED_TRACE(tvops::dtype_name(dt));
    Tensor t = Tensor::empty({2, 3}, dt);
    DLManagedTensor* m = t.to_dlpack();
    ASSERT_NE(m, nullptr);
    ASSERT_NE(m->deleter, nullptr);
    const DLTensor& d = m->dl_tensor;
    EXPECT_EQ(static_cast<char*>(d.data) + d.byte_offset, t.data_ptr());
    EXPECT_EQ(d.device.device_type, kDLCPU);
    EXPECT_EQ(d.device.device_id, 0);
    ASSERT_EQ(d.ndim, 2);
    EXPECT_EQ(std::vector<int64_t>(d.shape, d.shape + 2), (std::vector<int64_t>{2, 3}));
    ASSERT_NE(d.strides, nullptr);
    EXPECT_EQ(std::vector<int64_t>(d.strides, d.strides + 2), (std::vector<int64_t>{3, 1}));
    const DLDataType e = expected_dl_dtype(dt);
    EXPECT_EQ(d.dtype.code, e.code);
    EXPECT_EQ(d.dtype.bits, e.bits);
    EXPECT_EQ(d.dtype.lanes, e.lanes);
    m->deleter(m);
  }
}

TEST(DLPack, RoundTripKeepsPointerShapeStridesAndDtype) {
  for (DType dt : kAllDTypes) {
    SCOPED_TRACE(tvops::dtype_name(dt));
    Tensor base = Tensor::empty({4, 6}, dt);
    // A transposed, column-skipping view: strides the round trip must not normalise.
    Tensor view = Tensor::from_blob(base.data_ptr(), {3, 4}, {2, 6}, dt, {}, base.owner());
    for (const Tensor& t : {base, view}) {
      Tensor back = Tensor::from_dlpack(t.to_dlpack());
      EXPECT_EQ(back.data_ptr(), t.data_ptr());
      EXPECT_EQ(back.sizes(), t.sizes());
      EXPECT_EQ(back.strides(), t.strides());
      EXPECT_EQ(back.dtype(), dt);
      EXPECT_EQ(back.device(), t.device());
      EXPECT_EQ(back.is_contiguous(), t.is_contiguous());
    }
  }
}

TEST(DLPack, RoundTripOfZeroDimAndEmptyTensors) {
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{}, {0}, {3, 0, 2}}) {
    Tensor t = Tensor::empty(shape, DType::Float32);
    Tensor back = Tensor::from_dlpack(t.to_dlpack());
    EXPECT_EQ(back.sizes(), shape);
    EXPECT_EQ(back.strides(), t.strides());
    EXPECT_EQ(back.numel(), t.numel());
  }
}

TEST(DLPack, ExportKeepsTheMemoryAliveUntilTheDeleterRuns) {
  int released = 0;
  auto* buf = new int32_t[3]{7, 8, 9};
  DLManagedTensor* m;
  {
    std::shared_ptr<void> owner(buf, [&released](void* p) {
      ++released;
      delete[] static_cast<int32_t*>(p);
    });
    m = Tensor::from_blob(buf, {3}, {}, DType::Int32, {}, owner).to_dlpack();
  }
  EXPECT_EQ(released, 0);
  EXPECT_EQ(static_cast<int32_t*>(m->dl_tensor.data)[2], 9);
  m->deleter(m);
  EXPECT_EQ(released, 1);
}

// A hand-made producer: a DLManagedTensor whose deleter counts its calls.
struct Producer {
  float data[6] = {0, 1, 2, 3, 4, 5};
  int64_t shape[2] = {2, 3};
  int64_t strides[2] = {3, 1};
  int deleted = 0;
  DLManagedTensor managed{};

  Producer() {
    DLTensor& t = managed.dl_tensor;
    t.data = data;
    t.device = {kDLCPU, 0};
    t.ndim = 2;
    t.dtype = {kDLFloat, 32, 1};
    t.shape = shape;
    t.strides = strides;
    t.byte_offset = 0;
    managed.manager_ctx = this;
    managed.deleter = [](DLManagedTensor* self) { ++static_cast<Producer*>(self->manager_ctx)->deleted; };
  }
};

TEST(DLPack, ImportedDeleterRunsOnceWhenTheLastCopyDies) {
  Producer p;
  {
    Tensor a = Tensor::from_dlpack(&p.managed);
    EXPECT_EQ(a.data_ptr(), p.data);
    EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.data<float>()[4], 4.f);
    Tensor b = a;
    Tensor c = a.contiguous();  // already contiguous: shares the owner
    {
      Tensor d = b;
    }
    a = Tensor();
    b = Tensor();
    EXPECT_EQ(p.deleted, 0);
  }
  EXPECT_EQ(p.deleted, 1);
}

TEST(DLPack, ReExportedImportKeepsTheProducerAlive) {
  Producer p;
  DLManagedTensor* out;
  {
    Tensor a = Tensor::from_dlpack(&p.managed);
    out = a.to_dlpack();
  }
  EXPECT_EQ(p.deleted, 0);
  EXPECT_EQ(out->dl_tensor.data, p.data);
  out->deleter(out);
  EXPECT_EQ(p.deleted, 1);
}

TEST(DLPack, ImportAppliesByteOffsetAndNullStrides) {
  Producer p;
  p.managed.dl_tensor.strides = nullptr;  // compact row-major, per the standard
  p.managed.dl_tensor.byte_offset = 2 * sizeof(float);
  p.shape[0] = 1;
  p.shape[1] = 4;
  {
    Tensor t = Tensor::from_dlpack(&p.managed);
    EXPECT_EQ(t.data_ptr(), p.data + 2);
    EXPECT_EQ(t.strides(), (std::vector<int64_t>{4, 1}));
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_EQ(values_of<float>(t), (std::vector<float>{2, 3, 4, 5}));
  }
  EXPECT_EQ(p.deleted, 1);
}

TEST(DLPack, ImportMapsDevices) {
  {
    Producer p;
    p.managed.dl_tensor.device = {kDLCUDA, 3};
    Tensor t = Tensor::from_dlpack(&p.managed);
    EXPECT_TRUE(t.device().is_cuda());
    EXPECT_EQ(t.device().index, 3);
  }
  {
    Producer p;
    p.managed.dl_tensor.device = {kDLCUDAHost, 0};  // pinned host memory is CPU memory
    EXPECT_TRUE(Tensor::from_dlpack(&p.managed).device().is_cpu());
  }
}

TEST(DLPack, UnsupportedDtypeThrowsAndStillRunsTheDeleter) {
  const std::vector<DLDataType> bad = {
      {kDLComplex, 64, 1},  // complex64
      {kDLFloat, 8, 1},     // no 8-bit float
      {kDLFloat, 32, 4},    // float4 vector lanes
      {kDLOpaqueHandle, 64, 1},
  };
  for (const DLDataType& dt : bad) {
    Producer p;
    p.managed.dl_tensor.dtype = dt;
    expect_error([&] { Tensor::from_dlpack(&p.managed); }, tvops::ErrorKind::Type, "unsupported DLPack dtype");
    EXPECT_EQ(p.deleted, 1) << "code " << int(dt.code) << " bits " << int(dt.bits) << " lanes " << dt.lanes;
  }
}

TEST(DLPack, UnsupportedDeviceThrowsAndStillRunsTheDeleter) {
  for (DLDeviceType dev : {kDLOpenCL, kDLVulkan, kDLROCM}) {
    Producer p;
    p.managed.dl_tensor.device = {dev, 0};
    expect_error([&] { Tensor::from_dlpack(&p.managed); }, tvops::ErrorKind::Device, "unsupported DLPack device");
    EXPECT_EQ(p.deleted, 1) << "device type " << int(dev);
  }
}

TEST(DLPack, NegativeShapeThrowsAndStillRunsTheDeleter) {
  Producer p;
  p.shape[1] = -3;
  expect_error([&] { Tensor::from_dlpack(&p.managed); }, tvops::ErrorKind::Value, "negative DLPack shape");
  EXPECT_EQ(p.deleted, 1);
}

TEST(DLPack, NullImportThrows) {
  expect_error([] { Tensor::from_dlpack(nullptr); }, tvops::ErrorKind::Value, "from_dlpack(nullptr)");
}

}  // namespace
