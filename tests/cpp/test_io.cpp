// The C++ image codec API (tvops/io.h): round trips, modes, decode to size, batches,
// files, and every error path (message naming op and argument, error kind). Under
// the asan preset these also prove the error paths free what they allocated.
#include <gtest/gtest.h>
#include <tvops/tvops.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using tvops::DType;
using tvops::ErrorKind;
using tvops::ImageReadMode;
using tvops::Tensor;

bool have_codecs() { return !tvops::jpeg_library_version().empty() && !tvops::png_library_version().empty(); }

#define REQUIRE_CODECS() \
  if (!have_codecs()) GTEST_SKIP() << "built without libjpeg-turbo / libpng"

// A smooth test card: gradients per channel plus a little texture.
Tensor card(int64_t c, int64_t h, int64_t w, DType dtype = DType::UInt8) {
  Tensor t = Tensor::empty({c, h, w}, dtype);
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const int v = static_cast<int>((x * 255 / std::max<int64_t>(w - 1, 1) + y * 3 + k * 60 + ((x ^ y) & 7)) % 256);
        if (dtype == DType::UInt8)
          t.data<uint8_t>()[(k * h + y) * w + x] = static_cast<uint8_t>(v);
        else
          t.data<uint16_t>()[(k * h + y) * w + x] = static_cast<uint16_t>(v * 257 + (x & 3));
      }
  return t;
}

bool equal(const Tensor& a, const Tensor& b) {
  return a.sizes() == b.sizes() && a.dtype() == b.dtype() && std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

double psnr(const Tensor& a, const Tensor& b) {
  double se = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = double(a.data<uint8_t>()[i]) - b.data<uint8_t>()[i];
    se += d * d;
  }
  return se == 0 ? 99 : 10 * std::log10(255.0 * 255.0 / (se / a.numel()));
}

Tensor prefix(const Tensor& data, int64_t n) {
  Tensor t = Tensor::empty({n}, DType::UInt8);
  std::memcpy(t.data_ptr(), data.data_ptr(), static_cast<std::size_t>(n));
  return t;
}

// Runs f, expects a tvops::Error of this kind whose message starts with `prefix`.
template <typename F>
void expect_error(F&& f, ErrorKind kind, const std::string& start, const std::string& contains = "") {
  try {
    f();
    ADD_FAILURE() << "no error; expected " << start;
  } catch (const tvops::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(start, 0), 0u) << e.what();
    if (!contains.empty()) EXPECT_NE(std::string(e.what()).find(contains), std::string::npos) << e.what();
  }
}

TEST(Io, PngRoundTripEveryLayout) {
  REQUIRE_CODECS();
  for (DType dtype : {DType::UInt8, DType::UInt16})
    for (int64_t c = 1; c <= 4; ++c) {
      const Tensor img = card(c, 37, 53, dtype);
      const Tensor png = tvops::encode_png(img, 6);
      EXPECT_EQ(png.dim(), 1);
      EXPECT_TRUE(equal(tvops::decode_png(png), img)) << c;
      EXPECT_TRUE(equal(tvops::decode_image(png), img)) << c;
    }
}

TEST(Io, PngModes) {
  REQUIRE_CODECS();
  const Tensor png = tvops::encode_png(card(3, 20, 30), 1);
  EXPECT_EQ(tvops::decode_png(png, ImageReadMode::Gray).size(0), 1);
  EXPECT_EQ(tvops::decode_png(png, ImageReadMode::GrayAlpha).size(0), 2);
  EXPECT_EQ(tvops::decode_png(png, ImageReadMode::RGB).size(0), 3);
  const Tensor rgba = tvops::decode_png(png, ImageReadMode::RGBA);
  ASSERT_EQ(rgba.size(0), 4);
  for (int64_t i = 0; i < 20 * 30; ++i) EXPECT_EQ(rgba.data<uint8_t>()[3 * 600 + i], 255);
}

TEST(Io, JpegRoundTripAndModes) {
  REQUIRE_CODECS();
  const Tensor img = card(3, 64, 80);
  const Tensor jpeg = tvops::encode_jpeg(img, 95);
  const Tensor out = tvops::decode_jpeg(jpeg);
  ASSERT_EQ(out.sizes(), img.sizes());
  EXPECT_TRUE(out.is_contiguous());
  EXPECT_GT(psnr(out, img), 22.0);  // the card's hard edges and 4:2:0 chroma
  EXPECT_EQ(tvops::decode_jpeg(jpeg, ImageReadMode::Gray).size(0), 1);
  EXPECT_TRUE(equal(tvops::decode_jpeg(jpeg, ImageReadMode::RGB), out));
  const Tensor gray = tvops::encode_jpeg(card(1, 31, 17), 90);
  EXPECT_EQ(tvops::decode_jpeg(gray).size(0), 1);
  EXPECT_EQ(tvops::decode_jpeg(gray, ImageReadMode::RGB).size(0), 3);
  expect_error([&] { tvops::decode_jpeg(jpeg, ImageReadMode::RGBA); }, ErrorKind::Value,
               "decode_jpeg: mode: The provided mode is not supported for JPEG files");
}

TEST(Io, EncodeReadsAnyStrides) {
  REQUIRE_CODECS();
  const Tensor img = card(3, 16, 24);
  // The same pixels as an HWC buffer viewed as CHW (torchvision's decoder layout).
  Tensor hwc = Tensor::empty({16, 24, 3}, DType::UInt8);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 16 * 24; ++i) hwc.data<uint8_t>()[i * 3 + c] = img.data<uint8_t>()[c * 384 + i];
  const Tensor view = Tensor::from_blob(hwc.data_ptr(), {3, 16, 24}, {1, 72, 3}, DType::UInt8, {}, hwc.owner());
  EXPECT_TRUE(equal(tvops::encode_png(view, 3), tvops::encode_png(img, 3)));
  EXPECT_TRUE(equal(tvops::encode_jpeg(view, 80), tvops::encode_jpeg(img, 80)));
}

TEST(Io, DecodeToSizeAndCrop) {
  REQUIRE_CODECS();
  const Tensor jpeg = tvops::encode_jpeg(card(3, 400, 600), 90);
  const Tensor full = tvops::decode_jpeg(jpeg);
  tvops::DecodeSize s;
  s.min_height = 100, s.min_width = 100;
  EXPECT_EQ(tvops::decode_jpeg(jpeg, ImageReadMode::Unchanged, false, s).sizes(), (std::vector<int64_t>{3, 100, 150}));
  s.min_height = 101;
  EXPECT_EQ(tvops::decode_jpeg(jpeg, ImageReadMode::Unchanged, false, s).sizes(), (std::vector<int64_t>{3, 150, 225}));
  s = {};
  s.crop_top = 33, s.crop_left = 41, s.crop_height = 200, s.crop_width = 301;
  const Tensor crop = tvops::decode_jpeg(jpeg, ImageReadMode::Unchanged, false, s);
  ASSERT_EQ(crop.sizes(), (std::vector<int64_t>{3, 200, 301}));
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 200; ++y)
      ASSERT_EQ(std::memcmp(crop.data<uint8_t>() + (c * 200 + y) * 301,
                            full.data<uint8_t>() + (c * 400 + y + 33) * 600 + 41, 301), 0) << c << " " << y;
  s.crop_height = 400;  // past the bottom
  expect_error([&] { tvops::decode_jpeg(jpeg, ImageReadMode::Unchanged, false, s); }, ErrorKind::Value,
               "decode_jpeg: size: crop", "extends past");
}

TEST(Io, DecodeImagesInOrderAndNamesTheBadOne) {
  REQUIRE_CODECS();
  std::vector<Tensor> data;
  for (int i = 0; i < 9; ++i)
    data.push_back(i % 2 ? tvops::encode_png(card(3, 10 + i, 20), 6) : tvops::encode_jpeg(card(3, 10 + i, 20), 80));
  const std::vector<Tensor> out = tvops::decode_images(data);
  ASSERT_EQ(out.size(), data.size());
  for (std::size_t i = 0; i < data.size(); ++i) EXPECT_TRUE(equal(out[i], tvops::decode_image(data[i])));
  data[5] = prefix(data[5], 40);
  data[7] = prefix(data[7], 40);
  expect_error([&] { tvops::decode_images(data); }, ErrorKind::Value, "decode_images: data[5]: decode_png: input:");
  EXPECT_TRUE(tvops::decode_images({}).empty());
}

TEST(Io, InputChecks) {
  const Tensor good = have_codecs() ? tvops::encode_jpeg(card(3, 8, 8), 80) : Tensor::zeros({16}, DType::UInt8);
  for (auto decode : {&tvops::decode_jpeg, &tvops::decode_png, &tvops::decode_image}) {
    expect_error([&] { decode(Tensor(), ImageReadMode::Unchanged, false, {}); }, ErrorKind::Value, "decode_");
    expect_error([&] { decode(Tensor::zeros({0}, DType::UInt8), ImageReadMode::Unchanged, false, {}); },
                 ErrorKind::Value, "decode_", "Expected a non empty 1-dimensional tensor");
    expect_error([&] { decode(Tensor::zeros({4, 4}, DType::UInt8), ImageReadMode::Unchanged, false, {}); },
                 ErrorKind::Value, "decode_", "Expected a non empty 1-dimensional tensor");
    expect_error([&] { decode(Tensor::zeros({16}, DType::Float32), ImageReadMode::Unchanged, false, {}); },
                 ErrorKind::Type, "decode_", "Expected a torch.uint8 tensor, got float32");
    const Tensor strided = Tensor::from_blob(good.data_ptr(), {good.numel() / 2}, {2}, DType::UInt8, {}, good.owner());
    expect_error([&] { decode(strided, ImageReadMode::Unchanged, false, {}); }, ErrorKind::Value, "decode_",
                 "must be contiguous");
    const Tensor on_gpu = Tensor::from_blob(good.data_ptr(), {good.numel()}, {}, DType::UInt8,
                                            tvops::Device{tvops::DeviceType::CUDA, 0});
    expect_error([&] { decode(on_gpu, ImageReadMode::Unchanged, false, {}); }, ErrorKind::Device, "decode_",
                 "Expected a CPU tensor");
  }
  REQUIRE_CODECS();
  expect_error([&] { tvops::decode_png(good, static_cast<ImageReadMode>(9)); }, ErrorKind::Value,
               "decode_png: mode: unknown image read mode 9");
}

TEST(Io, TruncatedAtEveryLengthRaises) {
  REQUIRE_CODECS();
  for (const Tensor& data : {tvops::encode_jpeg(card(3, 24, 32), 90), tvops::encode_png(card(3, 24, 32), 9),
                             tvops::encode_png(card(2, 5, 7, DType::UInt16), 0)}) {
    const bool png = data.data<uint8_t>()[0] == 0x89;
    // A PNG missing only its IEND chunk holds the whole image: it decodes (as in torchvision).
    for (int64_t n = 1; n < data.numel() - (png ? 12 : 0); ++n) {
      try {
        tvops::decode_image(prefix(data, n));
        ADD_FAILURE() << "decoded a prefix of " << n << " bytes";
      } catch (const tvops::Error& e) {
        ASSERT_TRUE(e.kind() == ErrorKind::Value) << e.what();
      }
    }
  }
}

TEST(Io, PixelLimit) {
  REQUIRE_CODECS();
  const Tensor png = tvops::encode_png(card(1, 100, 100), 6);
  const int64_t saved = tvops::max_image_pixels();
  EXPECT_EQ(saved, int64_t(1) << 28);
  tvops::set_max_image_pixels(9999);
  expect_error([&] { tvops::decode_png(png); }, ErrorKind::Value, "decode_png: input: image of 100 x 100 pixels",
               "exceeds the limit of 9999");
  tvops::set_max_image_pixels(10000);
  EXPECT_NO_THROW(tvops::decode_png(png));
  tvops::set_max_image_pixels(0);
  EXPECT_EQ(tvops::max_image_pixels(), 0);
  EXPECT_NO_THROW(tvops::decode_png(png));
  tvops::set_max_image_pixels(saved);
}

TEST(Io, UnsupportedFormatsAndGpu) {
  Tensor gif = Tensor::zeros({32}, DType::UInt8);
  std::memcpy(gif.data_ptr(), "GIF89a", 6);
  expect_error([&] { tvops::decode_image(gif); }, ErrorKind::Unsupported, "decode_image: input: GIF");
  Tensor junk = Tensor::zeros({32}, DType::UInt8);
  expect_error([&] { tvops::decode_image(junk); }, ErrorKind::Value,
               "decode_image: input: Unsupported image file. Only jpeg and png are currently supported");
  if (!tvops::has_nvjpeg())
    expect_error([&] { tvops::decode_jpegs_cuda({junk}, ImageReadMode::RGB, {tvops::DeviceType::CUDA, 0}); },
                 ErrorKind::Unsupported, "decode_jpegs_cuda: device:", "no GPU JPEG decoder");
  expect_error([&] { tvops::decode_jpegs_cuda({junk}, ImageReadMode::RGB, {}); }, ErrorKind::Value,
               "decode_jpegs_cuda: device: Expected the device parameter to be a cuda device");
}

TEST(Io, EncodeChecks) {
  REQUIRE_CODECS();
  const Tensor img = card(3, 8, 8);
  expect_error([&] { tvops::encode_jpeg(img, 0); }, ErrorKind::Value,
               "encode_jpeg: quality: Image quality should be a positive number between 1 and 100");
  expect_error([&] { tvops::encode_png(img, 10); }, ErrorKind::Value,
               "encode_png: compression_level: Compression level should be between 0 and 9");
  expect_error([&] { tvops::encode_jpeg(card(2, 8, 8), 75); }, ErrorKind::Value,
               "encode_jpeg: input: The number of channels should be 1 or 3, got: 2");
  expect_error([&] { tvops::encode_jpeg(card(3, 8, 8, DType::UInt16), 75); }, ErrorKind::Type,
               "encode_jpeg: input: Input tensor dtype should be uint8");
  expect_error([&] { tvops::encode_png(Tensor::zeros({8, 8}, DType::UInt8), 6); }, ErrorKind::Value,
               "encode_png: input: Input data should be a 3-dimensional tensor");
}

TEST(Io, Files) {
  char path[] = "/tmp/tvops_io_testXXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  Tensor data = Tensor::empty({300}, DType::UInt8);
  for (int i = 0; i < 300; ++i) data.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
  tvops::write_file(path, data);
  EXPECT_TRUE(equal(tvops::read_file(path), data));
  std::remove(path);
  expect_error([&] { tvops::read_file(path); }, ErrorKind::Runtime, "read_file: path: [Errno 2] No such file");
  expect_error([&] { tvops::write_file("/nonexistent-dir/x", data); }, ErrorKind::Runtime, "write_file: path:");
  expect_error([&] { tvops::write_file(path, Tensor::zeros({2, 2}, DType::UInt8)); }, ErrorKind::Value,
               "write_file: data: Input data should be a 1-dimensional tensor");
}

TEST(Io, ReadModeNames) {
  EXPECT_EQ(tvops::image_read_mode_from_string("rgb"), ImageReadMode::RGB);
  EXPECT_EQ(tvops::image_read_mode_from_string("RGBA"), ImageReadMode::RGBA);
  EXPECT_EQ(tvops::image_read_mode_from_string("rgb_alpha"), ImageReadMode::RGBA);
  EXPECT_EQ(tvops::image_read_mode_from_string("Gray_Alpha"), ImageReadMode::GrayAlpha);
  expect_error([] { tvops::image_read_mode_from_string("cmyk"); }, ErrorKind::Value,
               "image_read_mode_from_string: mode: unknown image read mode 'cmyk'");
}

}  // namespace
