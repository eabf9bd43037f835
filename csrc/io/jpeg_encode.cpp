// encode_jpeg: libjpeg with torchvision's settings (jpeg_set_defaults, then
// jpeg_set_quality with baseline tables), rows interleaved from the CHW planes.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "dispatch/cpu_isa.h"
#include "io/image_common.h"
#include "tvops/io.h"

#if defined(TVOPS_WITH_JPEG)
#include "io/jpeg_common.h"
#endif

namespace tvops {

#if defined(TVOPS_WITH_JPEG)

namespace {

// Compressed bytes grow in a malloc'd buffer (realloc inside libjpeg's callback:
// nothing there may throw).
struct Destination {
  jpeg_destination_mgr pub;
  uint8_t* buffer = nullptr;
  std::size_t capacity = 0;
};

void dest_init(j_compress_ptr cinfo) {
  auto* d = reinterpret_cast<Destination*>(cinfo->dest);
  d->pub.next_output_byte = d->buffer;
  d->pub.free_in_buffer = d->capacity;
}

boolean dest_grow(j_compress_ptr cinfo) {
  auto* d = reinterpret_cast<Destination*>(cinfo->dest);
  const std::size_t used = d->capacity;  // libjpeg calls this only when the buffer is full
  auto* bigger = static_cast<uint8_t*>(std::realloc(d->buffer, 2 * d->capacity));
  if (!bigger) io::jpeg_fail(reinterpret_cast<j_common_ptr>(cinfo), "out of memory");
  d->buffer = bigger;
  d->capacity *= 2;
  d->pub.next_output_byte = d->buffer + used;
  d->pub.free_in_buffer = d->capacity - used;
  return TRUE;
}

void dest_term(j_compress_ptr) {}

struct Compressor {
  jpeg_compress_struct cinfo;
  io::JpegError err;
  Destination dest;
  Compressor() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    io::jpeg_install_error_handler(reinterpret_cast<j_common_ptr>(&cinfo), &err);
  }
  ~Compressor() {
    jpeg_destroy_compress(&cinfo);
    std::free(dest.buffer);
  }
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;
};

constexpr int kRows = 16;

}  // namespace

#endif  // TVOPS_WITH_JPEG

Tensor encode_jpeg(const Tensor& image, int64_t quality) {
  constexpr const char* op = "encode_jpeg";
  TVOPS_CHECK(quality >= 1 && quality <= 100, Value, op,
              ": quality: Image quality should be a positive number between 1 and 100, got ", quality);
  io::check_image_to_encode(op, image, false, 3);
#if !defined(TVOPS_WITH_JPEG)
  detail::fail(ErrorKind::Unsupported, op, ": this build of tvops has no JPEG codec");
#else
  const int64_t C = image.size(0), H = image.size(1), W = image.size(2);
  TVOPS_CHECK(H <= JPEG_MAX_DIMENSION && W <= JPEG_MAX_DIMENSION, Value, op, ": input: ", H, " x ", W,
              " is larger than JPEG allows (", JPEG_MAX_DIMENSION, ")");
  (void)detail::cpu_kernels();

  Compressor z;
  z.dest.capacity = static_cast<std::size_t>(W * H * C / 4) + 4096;
  z.dest.buffer = static_cast<uint8_t*>(std::malloc(z.dest.capacity));
  TVOPS_CHECK(z.dest.buffer, Runtime, op, ": out of memory");
  z.dest.pub.init_destination = dest_init;
  z.dest.pub.empty_output_buffer = dest_grow;
  z.dest.pub.term_destination = dest_term;
  std::vector<uint8_t> rows(static_cast<std::size_t>(kRows * W * C));
  j_compress_ptr cinfo = &z.cinfo;

  if (!io::jpeg_guard(z.err, [&] {
        jpeg_create_compress(cinfo);
        cinfo->dest = &z.dest.pub;
        cinfo->image_width = static_cast<JDIMENSION>(W);
        cinfo->image_height = static_cast<JDIMENSION>(H);
        cinfo->input_components = static_cast<int>(C);
        cinfo->in_color_space = C == 1 ? JCS_GRAYSCALE : JCS_RGB;
        jpeg_set_defaults(cinfo);
        jpeg_set_quality(cinfo, static_cast<int>(quality), TRUE);
        jpeg_start_compress(cinfo, TRUE);
      }))
    detail::fail(ErrorKind::Runtime, op, ": ", z.err.message);
  JSAMPROW pointers[kRows];
  for (int r = 0; r < kRows; ++r) pointers[r] = rows.data() + r * W * C;
  for (int64_t y = 0; y < H; y += kRows) {
    const int64_t n = std::min<int64_t>(kRows, H - y);
    for (int64_t r = 0; r < n; ++r) io::gather_row(image, y + r, pointers[r]);
    if (!io::jpeg_guard(z.err, [&] { jpeg_write_scanlines(cinfo, pointers, static_cast<JDIMENSION>(n)); }))
      detail::fail(ErrorKind::Runtime, op, ": ", z.err.message);
  }
  if (!io::jpeg_guard(z.err, [&] { jpeg_finish_compress(cinfo); }))
    detail::fail(ErrorKind::Runtime, op, ": ", z.err.message);

  const std::size_t size = z.dest.capacity - z.dest.pub.free_in_buffer;
  Tensor out = Tensor::empty({static_cast<int64_t>(size)}, DType::UInt8);
  std::memcpy(out.data_ptr(), z.dest.buffer, size);
  return out;
#endif
}

}  // namespace tvops
