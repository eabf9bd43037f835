// encode_png: libpng, 8- or 16-bit, 1 to 4 channels, no interlace, libpng's default
// filters, zlib level compression_level (torchvision: 8-bit gray or RGB only).
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "dispatch/cpu_isa.h"
#include "io/image_common.h"
#include "tvops/io.h"

#if defined(TVOPS_WITH_PNG)
#include "io/png_common.h"
#endif

namespace tvops {

#if defined(TVOPS_WITH_PNG)

namespace {

struct Sink {
  uint8_t* buffer = nullptr;
  std::size_t size = 0, capacity = 0;
};

void write_bytes(png_structp png, png_bytep data, png_size_t count) {
  auto* s = static_cast<Sink*>(png_get_io_ptr(png));
  if (count > s->capacity - s->size) {
    std::size_t grown = s->capacity * 2;
    while (grown - s->size < count) grown *= 2;
    auto* bigger = static_cast<uint8_t*>(std::realloc(s->buffer, grown));
    if (!bigger) png_error(png, "out of memory");
    s->buffer = bigger, s->capacity = grown;
  }
  std::memcpy(s->buffer + s->size, data, count);
  s->size += count;
}

void flush_bytes(png_structp) {}

struct PngCompressor {
  png_structp png = nullptr;
  png_infop info = nullptr;
  io::PngMessage message;
  Sink sink;
  ~PngCompressor() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
    std::free(sink.buffer);
  }
};

}  // namespace

#endif  // TVOPS_WITH_PNG

Tensor encode_png(const Tensor& image, int64_t compression_level) {
  constexpr const char* op = "encode_png";
  TVOPS_CHECK(compression_level >= 0 && compression_level <= 9, Value, op,
              ": compression_level: Compression level should be between 0 and 9, got ", compression_level);
  io::check_image_to_encode(op, image, true, 4);
#if !defined(TVOPS_WITH_PNG)
  detail::fail(ErrorKind::Unsupported, op, ": this build of tvops has no PNG codec");
#else
  const int64_t C = image.size(0), H = image.size(1), W = image.size(2);
  TVOPS_CHECK(H <= PNG_UINT_31_MAX && W <= PNG_UINT_31_MAX, Value, op, ": input: image too large for PNG");
  const bool wide = image.dtype() == DType::UInt16;
  (void)detail::cpu_kernels();

  PngCompressor z;
  z.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &z.message, io::png_on_error, io::png_on_warning);
  TVOPS_CHECK(z.png, Runtime, op, ": out of memory (png_create_write_struct)");
  z.info = png_create_info_struct(z.png);
  TVOPS_CHECK(z.info, Runtime, op, ": out of memory (png_create_info_struct)");
  z.sink.capacity = static_cast<std::size_t>(W * H * C) / 2 + 4096;
  z.sink.buffer = static_cast<uint8_t*>(std::malloc(z.sink.capacity));
  TVOPS_CHECK(z.sink.buffer, Runtime, op, ": out of memory");
  png_structp png = z.png;
  png_infop info = z.info;
  const std::size_t rowbytes = static_cast<std::size_t>(W * C) * (wide ? 2 : 1);
  std::vector<uint8_t> row(rowbytes);
  static const int kColorTypes[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                     PNG_COLOR_TYPE_RGB_ALPHA};
  auto fail = [&] { detail::fail(ErrorKind::Runtime, op, ": ", z.message.text); };

  if (!io::png_guard(png, [&] {
        png_set_write_fn(png, &z.sink, write_bytes, flush_bytes);
        png_set_IHDR(png, info, static_cast<png_uint_32>(W), static_cast<png_uint_32>(H), wide ? 16 : 8,
                     kColorTypes[C], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_set_compression_level(png, static_cast<int>(compression_level));
        png_write_info(png, info);
        if (wide) {
          const uint16_t one = 1;
          uint8_t first;
          std::memcpy(&first, &one, 1);
          if (first) png_set_swap(png);
        }
      }))
    fail();
  for (int64_t y = 0; y < H; ++y) {
    io::gather_row(image, y, row.data());
    if (!io::png_guard(png, [&] { png_write_row(png, row.data()); })) fail();
  }
  if (!io::png_guard(png, [&] { png_write_end(png, nullptr); })) fail();

  Tensor out = Tensor::empty({static_cast<int64_t>(z.sink.size)}, DType::UInt8);
  std::memcpy(out.data_ptr(), z.sink.buffer, z.sink.size);
  return out;
#endif
}

}  // namespace tvops
