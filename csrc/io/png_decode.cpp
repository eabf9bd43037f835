// decode_png: libpng with torchvision's transforms (OPS.md §13.1), rows read into a
// buffer and split into the CHW planes while in cache. Where torchvision's output is
// undefined (palette files without tRNS read as GRAY_ALPHA/RGB_ALPHA, sub-byte palette
// indices, 16-bit files with a mode conversion) tvops gives the evident result.
#include <algorithm>
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

struct Reader {
  const uint8_t* data;
  std::size_t size, pos;
};

void read_bytes(png_structp png, png_bytep out, png_size_t count) {
  auto* r = static_cast<Reader*>(png_get_io_ptr(png));
  if (count > r->size - r->pos) png_error(png, "Image is incomplete or truncated (read past the end of the data)");
  std::memcpy(out, r->data + r->pos, count);
  r->pos += count;
}

struct PngDecompressor {
  png_structp png = nullptr;
  png_infop info = nullptr;
  io::PngMessage message;
  ~PngDecompressor() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

int png_orientation(png_structp png, png_infop info) {
#if defined(PNG_eXIf_SUPPORTED)
  png_uint_32 n = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(png, info, &n, &exif) && exif) {
    if (n >= 6 && std::memcmp(exif, "Exif\0\0", 6) == 0) exif += 6, n -= 6;  // some writers keep JPEG's prefix
    return io::exif_orientation(exif, n);
  }
#endif
  return 0;
}

struct RowJob {
  int64_t H, W;       // stored image
  int64_t y0, y1, x0, x1;
  int channels;
  bool wide;          // 16-bit samples
  bool interlaced;
  uint8_t* out;       // [channels, y1 - y0, x1 - x0] of 1 or 2 bytes
  uint8_t* rows;      // one row, or the whole image (interlaced)
  png_bytepp row_pointers;  // interlaced: H pointers into rows
  std::size_t rowbytes;
};

void split_row(const RowJob& job, const uint8_t* row, int64_t y) {
  const int64_t ow = job.x1 - job.x0, plane = (job.y1 - job.y0) * ow;
  if (job.wide) {
    uint16_t* planes[4];
    auto* out = reinterpret_cast<uint16_t*>(job.out);
    for (int c = 0; c < job.channels; ++c) planes[c] = out + c * plane + (y - job.y0) * ow;
    io::deinterleave_row(reinterpret_cast<const uint16_t*>(row) + job.x0 * job.channels, ow, job.channels, planes);
  } else {
    uint8_t* planes[4];
    for (int c = 0; c < job.channels; ++c) planes[c] = job.out + c * plane + (y - job.y0) * ow;
    io::deinterleave_row(row + job.x0 * job.channels, ow, job.channels, planes);
  }
}

void read_rows(png_structp png, const RowJob& job) {
  if (job.interlaced) {  // Adam7 fills every row in seven passes: the whole image first
    png_read_image(png, job.row_pointers);
    for (int64_t y = job.y0; y < job.y1; ++y) split_row(job, job.row_pointers[y], y);
    return;
  }
  const bool direct = job.channels == 1 && !job.wide && job.x0 == 0 && job.x1 == job.W;
  for (int64_t y = 0; y < job.y1; ++y) {
    if (direct && y >= job.y0) {
      png_read_row(png, job.out + (y - job.y0) * job.W, nullptr);
      continue;
    }
    png_read_row(png, job.rows, nullptr);
    if (y >= job.y0) split_row(job, job.rows, y);
  }
}

}  // namespace

#endif  // TVOPS_WITH_PNG

std::string png_library_version() {
#if !defined(TVOPS_WITH_PNG)
  return "";
#else
  return std::string("libpng ") + png_get_libpng_ver(nullptr);
#endif
}

Tensor decode_png(const Tensor& data, ImageReadMode mode, bool apply_exif_orientation, const DecodeSize& size) {
  constexpr const char* op = "decode_png";
  io::check_encoded(op, data);
  io::check_mode(op, mode);
#if !defined(TVOPS_WITH_PNG)
  (void)apply_exif_orientation, (void)size;
  detail::fail(ErrorKind::Unsupported, op, ": this build of tvops has no PNG codec (libpng was not found when it "
               "was configured)");
#else
  (void)detail::cpu_kernels();  // the CPU check may throw: not from inside libpng
  const auto* bytes = data.data<uint8_t>();
  const auto nbytes = static_cast<std::size_t>(data.numel());
  TVOPS_CHECK(nbytes >= 8, Value, op, ": input: Content is too small for png! (", nbytes, " bytes)");
  TVOPS_CHECK(png_sig_cmp(bytes, 0, 8) == 0, Value, op, ": input: Content is not png! (no PNG signature)");

  PngDecompressor d;
  d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d.message, io::png_on_error, io::png_on_warning);
  TVOPS_CHECK(d.png, Runtime, op, ": out of memory (png_create_read_struct)");
  d.info = png_create_info_struct(d.png);
  TVOPS_CHECK(d.info, Runtime, op, ": out of memory (png_create_info_struct)");
  png_structp png = d.png;
  png_infop info = d.info;
  Reader reader{bytes, nbytes, 8};
  auto fail = [&](const char* stage) {
    detail::fail(ErrorKind::Value, op, ": input: ", d.message.text[0] ? d.message.text : stage);
  };

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  if (!io::png_guard(png, [&] {
        png_set_sig_bytes(png, 8);
        png_set_read_fn(png, &reader, read_bytes);
        png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);  // the pixel limit below decides
#if defined(PNG_IGNORE_ADLER32)
        // Every IDAT chunk's CRC-32 is checked anyway; zlib's Adler-32 over the inflated
        // bytes repeats that check at ~10% of the decode.
        png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
        png_read_info(png, info);
        png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, nullptr, nullptr);
      }))
    fail("corrupt header");
  io::check_pixels(op, width, height);
  TVOPS_CHECK(bit_depth <= 8 || bit_depth == 16, Value, op, ": input: bit depth of png image is ", bit_depth,
              ". Only <=8 and 16 are supported.");
  const int orientation = apply_exif_orientation ? png_orientation(png, info) : 0;

  const bool palette = (color_type & PNG_COLOR_MASK_PALETTE) != 0;
  const bool color = (color_type & PNG_COLOR_MASK_COLOR) != 0;
  const bool trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  int channels = 0;
  if (!io::png_guard(png, [&] {
        if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (interlace == PNG_INTERLACE_ADAM7) png_set_interlace_handling(png);
        // torchvision's transforms; tRNS only counts through palette expansion, as there.
        // Opaque is the full value of the output depth (torchvision passes 2^depth - 1 of
        // the file, which leaves 1-, 2- and 4-bit gray files nearly transparent).
        const png_uint_32 opaque = bit_depth == 16 ? 0xFFFF : 0xFF;
        bool alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0;
        switch (mode) {
          case ImageReadMode::Unchanged:
            if (palette && bit_depth < 8) png_set_packing(png);  // one index per byte
            break;
          case ImageReadMode::Gray:
            if (color_type == PNG_COLOR_TYPE_GRAY) break;
            if (palette) png_set_palette_to_rgb(png), alpha = trns;
            if (alpha) png_set_strip_alpha(png);
            if (color) png_set_rgb_to_gray(png, 1, 0.2989, 0.587);
            break;
          case ImageReadMode::GrayAlpha:
            if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA) break;
            if (palette) png_set_palette_to_rgb(png), alpha = trns;
            if (!alpha) png_set_add_alpha(png, opaque, PNG_FILLER_AFTER);
            if (color) png_set_rgb_to_gray(png, 1, 0.2989, 0.587);
            break;
          case ImageReadMode::RGB:
            if (color_type == PNG_COLOR_TYPE_RGB) break;
            if (palette)
              png_set_palette_to_rgb(png), alpha = trns;
            else if (!color)
              png_set_gray_to_rgb(png);
            if (alpha) png_set_strip_alpha(png);
            break;
          case ImageReadMode::RGBA:
            if (color_type == PNG_COLOR_TYPE_RGB_ALPHA) break;
            if (palette)
              png_set_palette_to_rgb(png), alpha = trns;
            else if (!color)
              png_set_gray_to_rgb(png);
            if (!alpha) png_set_add_alpha(png, opaque, PNG_FILLER_AFTER);
            break;
        }
        if (bit_depth == 16) {
          const uint16_t one = 1;
          uint8_t first;
          std::memcpy(&first, &one, 1);
          if (first) png_set_swap(png);  // PNG stores big-endian; uint16 out is native
        }
        png_read_update_info(png, info);
        channels = png_get_channels(png, info);
      }))
    fail("corrupt header");
  const int out_depth = png_get_bit_depth(png, info);
  TVOPS_CHECK(channels >= 1 && channels <= 4 && (out_depth == 8 || out_depth == 16), Value, op,
              ": input: unexpected pixel layout after conversion (", channels, " channels of ", out_depth, " bits)");

  const int64_t H = height, W = width;
  io::Region region{0, 0, H, W, 0, 0};
  if (!size.is_full()) region = io::stored_region(op, size, orientation, H, W);
  RowJob job{};
  job.H = H, job.W = W;
  job.y0 = region.top, job.y1 = region.top + region.height;
  job.x0 = region.left, job.x1 = region.left + region.width;
  job.channels = channels;
  job.wide = out_depth == 16;
  job.interlaced = interlace == PNG_INTERLACE_ADAM7;
  job.rowbytes = png_get_rowbytes(png, info);
  TVOPS_CHECK(job.rowbytes == static_cast<std::size_t>(W) * channels * (job.wide ? 2 : 1), Value, op,
              ": input: unexpected row size ", job.rowbytes);

  Tensor out = Tensor::empty({channels, job.y1 - job.y0, job.x1 - job.x0}, job.wide ? DType::UInt16 : DType::UInt8);

  // 8-bit files read as stored (the common case): tvops' own inflate + unfilter, on two
  // threads (png_pipeline.cpp); libpng's row machinery costs as much again.
  const bool as_stored = mode == ImageReadMode::Unchanged ||
                         (mode == ImageReadMode::Gray && color_type == PNG_COLOR_TYPE_GRAY) ||
                         (mode == ImageReadMode::GrayAlpha && color_type == PNG_COLOR_TYPE_GRAY_ALPHA) ||
                         (mode == ImageReadMode::RGB && color_type == PNG_COLOR_TYPE_RGB) ||
                         (mode == ImageReadMode::RGBA && color_type == PNG_COLOR_TYPE_RGB_ALPHA);
  const std::size_t idat_at = reader.pos - 8;  // png_read_info stops after the first IDAT's header
  if (as_stored && !palette && bit_depth == 8 && !job.interlaced &&
      H * static_cast<int64_t>(job.rowbytes + 1) < (int64_t(1) << 31) && idat_at + 8 <= nbytes &&
      std::memcmp(bytes + idat_at + 4, "IDAT", 4) == 0) {
    const std::string error = io::png_decode_pipelined({bytes, nbytes, idat_at, W, channels, job.y0, job.y1, job.x0,
                                                        job.x1, out.data<uint8_t>()});
    if (!error.empty()) detail::fail(ErrorKind::Value, op, ": input: ", error);
    return io::apply_orientation(out, orientation);
  }

  std::vector<uint8_t> rows(job.interlaced ? job.rowbytes * static_cast<std::size_t>(H) : job.rowbytes);
  std::vector<png_bytep> pointers(job.interlaced ? static_cast<std::size_t>(H) : 0);
  for (std::size_t y = 0; y < pointers.size(); ++y) pointers[y] = rows.data() + y * job.rowbytes;
  job.out = static_cast<uint8_t*>(out.data_ptr());
  job.rows = rows.data();
  job.row_pointers = pointers.data();
  if (!io::png_guard(png, [&] { read_rows(png, job); })) fail("corrupt image data");
  return io::apply_orientation(out, orientation);
#endif
}

}  // namespace tvops
