// decode_image (format by magic bytes), the batched decode on the thread pool,
// read_file / write_file, and the GPU entry point (nvJPEG: not in this build yet).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <sys/stat.h>

#include "core/check.h"
#include "core/thread_pool.h"
#include "io/image_common.h"
#include "ops/device_check.h"
#if defined(TVOPS_WITH_NVJPEG)
#include "kernels/cuda/ops.h"
#endif
#include "tvops/io.h"

namespace tvops {

namespace {

enum class Format { Jpeg, Png, Gif, Webp, Avif, Heic, Unknown };

Format sniff(const uint8_t* p, std::size_t n) {
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return Format::Jpeg;
  if (n >= 4 && p[0] == 0x89 && p[1] == 'P' && p[2] == 'N' && p[3] == 'G') return Format::Png;
  if (n >= 6 && (std::memcmp(p, "GIF89a", 6) == 0 || std::memcmp(p, "GIF87a", 6) == 0)) return Format::Gif;
  if (n >= 12 && std::memcmp(p + 4, "ftypavif", 8) == 0) return Format::Avif;
  if (n >= 12 && std::memcmp(p + 4, "ftypheic", 8) == 0) return Format::Heic;
  if (n >= 15 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WEBPVP8", 7) == 0) return Format::Webp;
  return Format::Unknown;
}

}  // namespace

Tensor decode_image(const Tensor& data, ImageReadMode mode, bool apply_exif_orientation, const DecodeSize& size) {
  constexpr const char* op = "decode_image";
  io::check_encoded(op, data);
  const auto* p = data.data<uint8_t>();
  const auto n = static_cast<std::size_t>(data.numel());
  switch (sniff(p, n)) {
    case Format::Jpeg: return decode_jpeg(data, mode, apply_exif_orientation, size);
    case Format::Png: return decode_png(data, mode, apply_exif_orientation, size);
    case Format::Gif: detail::fail(ErrorKind::Unsupported, op, ": input: GIF is not supported by tvops (use torchvision.io.decode_gif)");
    case Format::Webp: detail::fail(ErrorKind::Unsupported, op, ": input: WEBP is not supported by tvops (use torchvision.io.decode_webp)");
    case Format::Avif: detail::fail(ErrorKind::Unsupported, op, ": input: AVIF is not supported by tvops");
    case Format::Heic: detail::fail(ErrorKind::Unsupported, op, ": input: HEIC is not supported by tvops");
    case Format::Unknown: break;
  }
  char head[64];
  std::snprintf(head, sizeof(head), "%02x %02x %02x %02x", p[0], n > 1 ? p[1] : 0, n > 2 ? p[2] : 0,
                n > 3 ? p[3] : 0);
  detail::fail(ErrorKind::Value, op, ": input: Unsupported image file. Only jpeg and png are currently supported "
               "(the data starts with ", n >= 4 ? head : "fewer than 4 bytes", ")");
}

namespace {

using DecodeFn = Tensor (*)(const Tensor&, ImageReadMode, bool, const DecodeSize&);

std::vector<Tensor> decode_batch(const char* op, DecodeFn decode, const std::vector<Tensor>& data, ImageReadMode mode,
                                 bool apply_exif_orientation, const DecodeSize& size) {
  const int64_t n = static_cast<int64_t>(data.size());
  std::vector<Tensor> out(data.size());
  std::mutex lock;
  int64_t first_bad = n;
  std::string first_message;
  ErrorKind first_kind = ErrorKind::Runtime;
  // One image per task: decodes are long (ms) and uneven, so the pool balances them.
  detail::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        out[i] = decode(data[i], mode, apply_exif_orientation, size);
      } catch (const Error& e) {
        std::lock_guard<std::mutex> g(lock);
        if (i < first_bad) first_bad = i, first_message = e.what(), first_kind = e.kind();
      } catch (const std::exception& e) {  // bad_alloc
        std::lock_guard<std::mutex> g(lock);
        if (i < first_bad) first_bad = i, first_message = e.what(), first_kind = ErrorKind::Runtime;
      }
    }
  });
  if (first_bad < n) detail::fail(first_kind, op, ": data[", first_bad, "]: ", first_message);
  return out;
}

}  // namespace

std::vector<Tensor> decode_images(const std::vector<Tensor>& data, ImageReadMode mode, bool apply_exif_orientation,
                                  const DecodeSize& size) {
  return decode_batch("decode_images", &decode_image, data, mode, apply_exif_orientation, size);
}

std::vector<Tensor> decode_jpegs(const std::vector<Tensor>& data, ImageReadMode mode, bool apply_exif_orientation,
                                 const DecodeSize& size) {
  return decode_batch("decode_jpegs", &decode_jpeg, data, mode, apply_exif_orientation, size);
}

bool has_nvjpeg() {
#if defined(TVOPS_WITH_NVJPEG)
  return cuda::nvjpeg_available();
#else
  return false;
#endif
}

std::vector<Tensor> decode_jpegs_cuda(const std::vector<Tensor>& data, ImageReadMode mode, Device device,
                                      const Context& ctx) {
  constexpr const char* op = "decode_jpegs_cuda";
  TVOPS_CHECK(device.is_cuda(), Value, op, ": device: Expected the device parameter to be a cuda device, got ",
              device_name(device));
  for (std::size_t i = 0; i < data.size(); ++i) io::check_encoded(op, data[i]);
  io::check_mode(op, mode);
  TVOPS_CHECK(mode == ImageReadMode::Unchanged || mode == ImageReadMode::Gray || mode == ImageReadMode::RGB, Value, op,
              ": mode: the GPU decoder supports UNCHANGED, GRAY and RGB");
#if defined(TVOPS_WITH_NVJPEG)
  if (cuda::nvjpeg_available()) detail::require_cuda(op, device);  // else decode_jpegs says what is missing
  return cuda::decode_jpegs(data, static_cast<int>(mode), device.index, ctx);
#else
  (void)ctx;
  detail::fail(ErrorKind::Unsupported, op, ": device: this build of tvops has no GPU JPEG decoder (built without "
               "nvjpeg.h); decode on the CPU with device='cpu'");
#endif
}

Tensor read_file(const std::string& path) {
  constexpr const char* op = "read_file";
  struct stat st;
  TVOPS_CHECK(::stat(path.c_str(), &st) == 0, Runtime, op, ": path: [Errno ", errno, "] ", std::strerror(errno),
              ": '", path, "'");
  TVOPS_CHECK(!S_ISDIR(st.st_mode), Runtime, op, ": path: '", path, "' is a directory");
  TVOPS_CHECK(st.st_size > 0, Runtime, op, ": path: Expected a non empty file: '", path, "'");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  TVOPS_CHECK(f, Runtime, op, ": path: Error opening input file '", path, "': ", std::strerror(errno));
  Tensor out = Tensor::empty({static_cast<int64_t>(st.st_size)}, DType::UInt8);
  const std::size_t got = std::fread(out.data_ptr(), 1, static_cast<std::size_t>(st.st_size), f);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  TVOPS_CHECK(!bad && got == static_cast<std::size_t>(st.st_size), Runtime, op, ": path: short read of '", path,
              "' (", got, " of ", st.st_size, " bytes)");
  return out;
}

void write_file(const std::string& path, const Tensor& data) {
  constexpr const char* op = "write_file";
  TVOPS_CHECK(data.defined(), Value, op, ": data: undefined tensor");
  TVOPS_CHECK(data.device().is_cpu(), Device, op, ": data: Input tensor should be on CPU, got one on ",
              device_name(data.device()));
  TVOPS_CHECK(data.dtype() == DType::UInt8, Type, op, ": data: Input tensor dtype should be uint8, got ",
              dtype_name(data.dtype()));
  TVOPS_CHECK(data.dim() == 1, Value, op, ": data: Input data should be a 1-dimensional tensor, got ", data.dim(),
              " dimensions");
  const Tensor bytes = data.contiguous();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  TVOPS_CHECK(f, Runtime, op, ": path: [Errno ", errno, "] ", std::strerror(errno), ": '", path, "'");
  const std::size_t n = static_cast<std::size_t>(bytes.numel());
  const std::size_t put = n ? std::fwrite(bytes.data_ptr(), 1, n, f) : 0;
  const bool closed = std::fclose(f) == 0;
  TVOPS_CHECK(put == n && closed, Runtime, op, ": path: writing '", path, "' failed: ", std::strerror(errno));
}

}  // namespace tvops
