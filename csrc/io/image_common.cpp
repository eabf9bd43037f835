#include "io/image_common.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/check.h"
#include "dispatch/cpu_isa.h"

namespace tvops {

ImageReadMode image_read_mode_from_string(const std::string& name) {
  std::string up = name;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up == "UNCHANGED") return ImageReadMode::Unchanged;
  if (up == "GRAY") return ImageReadMode::Gray;
  if (up == "GRAY_ALPHA") return ImageReadMode::GrayAlpha;
  if (up == "RGB") return ImageReadMode::RGB;
  if (up == "RGB_ALPHA" || up == "RGBA") return ImageReadMode::RGBA;
  detail::fail(ErrorKind::Value, "image_read_mode_from_string: mode: unknown image read mode '", name,
               "' (expected UNCHANGED, GRAY, GRAY_ALPHA, RGB, RGB_ALPHA or RGBA)");
}

namespace {
// 2^28 pixels: 16384 x 16384, 805 MB as RGB. Above any camera, below what takes a
// data-loader worker out of memory; a claim past it in a small file is a bomb.
std::atomic<int64_t> g_max_pixels{int64_t(1) << 28};
}  // namespace

void set_max_image_pixels(int64_t pixels) { g_max_pixels.store(pixels > 0 ? pixels : 0); }
int64_t max_image_pixels() { return g_max_pixels.load(); }

namespace io {

void check_encoded(const char* op, const Tensor& data) {
  TVOPS_CHECK(data.defined(), Value, op, ": input: undefined tensor");
  TVOPS_CHECK(data.device().is_cpu(), Device, op, ": input: Expected a CPU tensor, got one on ",
              device_name(data.device()));
  TVOPS_CHECK(data.dtype() == DType::UInt8, Type, op, ": input: Expected a torch.uint8 tensor, got ",
              dtype_name(data.dtype()));
  TVOPS_CHECK(data.dim() == 1 && data.numel() > 0, Value, op,
              ": input: Expected a non empty 1-dimensional tensor, got ", data.dim(), " dims and ", data.numel(),
              " elements");
  TVOPS_CHECK(data.is_contiguous(), Value, op, ": input: Input tensor must be contiguous.");
}

void check_pixels(const char* op, int64_t width, int64_t height) {
  TVOPS_CHECK(width > 0 && height > 0, Value, op, ": input: image has zero size (", width, " x ", height, ")");
  const int64_t limit = max_image_pixels();
  TVOPS_CHECK(limit == 0 || width <= limit / height, Value, op, ": input: image of ", width, " x ", height,
              " pixels exceeds the limit of ", limit,
              " pixels (possible decompression bomb; raise it with set_max_image_pixels)");
}

void check_mode(const char* op, ImageReadMode mode) {
  const int m = static_cast<int>(mode);
  TVOPS_CHECK(m >= 0 && m <= 4, Value, op, ": mode: unknown image read mode ", m);
}

int exif_orientation(const uint8_t* tiff, std::size_t size) {
  if (size < 8 || tiff[0] != tiff[1] || (tiff[0] != 'I' && tiff[0] != 'M')) return 0;
  const bool little = tiff[0] == 'I';
  auto u16 = [&](std::size_t at) -> uint32_t {
    return little ? uint32_t(tiff[at]) | uint32_t(tiff[at + 1]) << 8 : uint32_t(tiff[at]) << 8 | tiff[at + 1];
  };
  auto u32 = [&](std::size_t at) -> uint32_t {
    return little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2);
  };
  if (u16(2) != 0x2A) return 0;
  const std::size_t ifd = u32(4);
  if (ifd > size || size - ifd < 2) return 0;
  const std::size_t entries = u16(ifd);
  for (std::size_t i = 0; i < entries; ++i) {
    const std::size_t at = ifd + 2 + 12 * i;
    if (at > size || size - at < 12) return 0;
    if (u16(at) == 0x0112) {
      const uint32_t v = u16(at + 8);
      return v >= 1 && v <= 8 ? int(v) : 0;
    }
  }
  return 0;
}

namespace {

// out[c][y][x] = in[c][sy][sx] with (sy, sx) from the orientation; 32x32 blocks keep
// the transposing cases within cache.
template <typename T>
void orient(const T* in, int64_t C, int64_t H, int64_t W, int o, T* out) {
  const bool swap = o >= 5;
  const int64_t Ho = swap ? W : H, Wo = swap ? H : W;
  constexpr int64_t B = 32;
  for (int64_t c = 0; c < C; ++c) {
    const T* src = in + c * H * W;
    T* dst = out + c * Ho * Wo;
    for (int64_t y0 = 0; y0 < Ho; y0 += B)
      for (int64_t x0 = 0; x0 < Wo; x0 += B)
        for (int64_t y = y0; y < std::min(Ho, y0 + B); ++y)
          for (int64_t x = x0; x < std::min(Wo, x0 + B); ++x) {
            int64_t sy = y, sx = x;
            switch (o) {
              case 2: sx = W - 1 - x; break;
              case 3: sy = H - 1 - y, sx = W - 1 - x; break;
              case 4: sy = H - 1 - y; break;
              case 5: sy = x, sx = y; break;
              case 6: sy = H - 1 - x, sx = y; break;
              case 7: sy = H - 1 - x, sx = W - 1 - y; break;
              case 8: sy = x, sx = W - 1 - y; break;
              default: break;
            }
            dst[y * Wo + x] = src[sy * W + sx];
          }
  }
}

}  // namespace

Tensor apply_orientation(const Tensor& chw, int o) {
  if (o < 2 || o > 8) return chw;
  const int64_t C = chw.size(0), H = chw.size(1), W = chw.size(2);
  Tensor out = Tensor::empty(o >= 5 ? std::vector<int64_t>{C, W, H} : std::vector<int64_t>{C, H, W}, chw.dtype());
  if (chw.dtype() == DType::UInt16)
    orient(chw.data<uint16_t>(), C, H, W, o, out.data<uint16_t>());
  else
    orient(chw.data<uint8_t>(), C, H, W, o, out.data<uint8_t>());
  return out;
}

Region stored_region(const char* op, const DecodeSize& s, int o, int64_t H, int64_t W) {
  const bool swap = o >= 5 && o <= 8;
  const int64_t Hd = swap ? W : H, Wd = swap ? H : W;  // as displayed
  TVOPS_CHECK(s.crop_top >= 0 && s.crop_left >= 0 && s.crop_height >= 0 && s.crop_width >= 0, Value, op,
              ": size: crop (top ", s.crop_top, ", left ", s.crop_left, ", height ", s.crop_height, ", width ",
              s.crop_width, ") must not be negative");
  const int64_t t = s.crop_top, l = s.crop_left;
  TVOPS_CHECK(t < Hd && l < Wd, Value, op, ": size: crop origin (", t, ", ", l, ") lies outside the ", Hd, " x ",
              Wd, " image");
  const int64_t h = s.crop_height ? s.crop_height : Hd - t, w = s.crop_width ? s.crop_width : Wd - l;
  TVOPS_CHECK(h <= Hd - t && w <= Wd - l, Value, op, ": size: crop (top ", t, ", left ", l, ", height ", h,
              ", width ", w, ") extends past the ", Hd, " x ", Wd, " image");
  Region r;
  r.min_height = swap ? s.min_width : s.min_height;
  r.min_width = swap ? s.min_height : s.min_width;
  r.height = swap ? w : h;
  r.width = swap ? h : w;
  switch (swap || (o >= 2 && o <= 4) ? o : 1) {
    case 2: r.top = t, r.left = W - (l + w); break;
    case 3: r.top = H - (t + h), r.left = W - (l + w); break;
    case 4: r.top = H - (t + h), r.left = l; break;
    case 5: r.top = l, r.left = t; break;
    case 6: r.top = H - (l + w), r.left = t; break;
    case 7: r.top = H - (l + w), r.left = W - (t + h); break;
    case 8: r.top = l, r.left = W - (t + h); break;
    default: r.top = t, r.left = l; break;
  }
  return r;
}

void scaled_span(int64_t full, int64_t start, int64_t length, int scale, int64_t& begin, int64_t& end) {
  const int64_t scaled = (full * scale + 7) / 8;
  begin = start * scale / 8;
  end = std::min(scaled, ((start + length) * scale + 7) / 8);
}

// torchvision's checks and messages for the encoders' image argument.
void check_image_to_encode(const char* op, const Tensor& image, bool allow_16bit, int max_channels) {
  TVOPS_CHECK(image.defined(), Value, op, ": input: undefined tensor");
  TVOPS_CHECK(image.device().is_cpu(), Device, op, ": input: Input tensor should be on CPU, got one on ",
              device_name(image.device()));
  TVOPS_CHECK(image.dtype() == DType::UInt8 || (allow_16bit && image.dtype() == DType::UInt16), Type, op,
              ": input: Input tensor dtype should be uint8", allow_16bit ? " or uint16" : "", ", got ",
              dtype_name(image.dtype()));
  TVOPS_CHECK(image.dim() == 3, Value, op, ": input: Input data should be a 3-dimensional tensor, got ", image.dim(),
              " dimensions");
  const int64_t c = image.size(0);
  TVOPS_CHECK(c == 1 || c == 3 || (max_channels == 4 && c >= 1 && c <= 4), Value, op,
              ": input: The number of channels should be ", max_channels == 4 ? "1 to 4" : "1 or 3", ", got: ", c);
  TVOPS_CHECK(image.size(1) > 0 && image.size(2) > 0, Value, op, ": input: image has zero size (", image.size(1),
              " x ", image.size(2), ")");
}

// Row y of a CHW image as interleaved pixels (elements of `bytes` bytes).
void gather_row(const Tensor& image, int64_t y, uint8_t* dst) {
  const int64_t C = image.size(0), W = image.size(2);
  const std::size_t es = dtype_size(image.dtype());
  const auto* base = static_cast<const uint8_t*>(image.data_ptr());
  const int64_t sc = image.stride(0), sy = image.stride(1), sx = image.stride(2);
  if (es == 1 && sx == 1) {
    const uint8_t* planes[4];
    for (int64_t c = 0; c < C; ++c) planes[c] = base + c * sc + y * sy;
    interleave_row(planes, W, static_cast<int>(C), dst);
    return;
  }
  for (int64_t x = 0; x < W; ++x)
    for (int64_t c = 0; c < C; ++c)
      std::memcpy(dst + (x * C + c) * es, base + (c * sc + y * sy + x * sx) * static_cast<int64_t>(es), es);
}

void deinterleave_row(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes) {
  detail::cpu_kernels().deinterleave_u8(src, n, channels, planes);
}

void deinterleave_row_stream(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes) {
  detail::cpu_kernels().deinterleave_u8_stream(src, n, channels, planes);
}

void store_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

void deinterleave_row(const uint16_t* src, int64_t n, int channels, uint16_t* const* planes) {
  detail::cpu_kernels().deinterleave_u16(src, n, channels, planes);
}

void interleave_row(const uint8_t* const* planes, int64_t n, int channels, uint8_t* dst) {
  detail::cpu_kernels().interleave_u8(planes, n, channels, dst);
}

}  // namespace io
}  // namespace tvops
