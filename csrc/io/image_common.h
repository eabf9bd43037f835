// Helpers shared by the codecs (internal): input checks, the pixel limit, EXIF
// orientation, decode-to-size geometry and the HWC row -> CHW plane copy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tvops/io.h"
#include "tvops/tensor.h"

namespace tvops::io {

// Encoded input: defined, CPU, uint8, 1-d, non-empty, contiguous. Messages keep
// torchvision's wording ("Expected a torch.uint8 tensor", ...) after "<op>: input: ".
void check_encoded(const char* op, const Tensor& data);

// Raises when width * height exceeds max_image_pixels() (or is zero).
void check_pixels(const char* op, int64_t width, int64_t height);

// Rejects modes a codec does not know (values outside the enum).
void check_mode(const char* op, ImageReadMode mode);

// The orientation tag (1..8) of a TIFF-structured EXIF block (starting at its
// byte-order mark), or 0 when absent or malformed. Never reads past size.
int exif_orientation(const uint8_t* tiff, std::size_t size);

// The CHW tensor as EXIF orientation o displays it (o outside 2..8: unchanged).
Tensor apply_orientation(const Tensor& chw, int orientation);

// Decode-to-size geometry in the file's own (stored) orientation.
struct Region {
  int64_t top = 0, left = 0, height = 0, width = 0;  // crop of the full-size stored image
  int64_t min_height = 0, min_width = 0;
};
// Maps a DecodeSize given in displayed coordinates to stored ones and checks the
// crop lies inside the image (stored size height x width).
Region stored_region(const char* op, const DecodeSize& size, int orientation, int64_t height, int64_t width);
// [begin, end) of a crop [start, start + length) of an axis of `full` pixels once
// scaled by scale/8 (scaled axis: ceil(full * scale / 8)).
void scaled_span(int64_t full, int64_t start, int64_t length, int scale, int64_t& begin, int64_t& end);

// The encoders' checks of their image argument ([C, H, W], torchvision's messages).
void check_image_to_encode(const char* op, const Tensor& image, bool allow_16bit, int max_channels);
// Row y of a CHW image (any strides) as interleaved pixels.
void gather_row(const Tensor& image, int64_t y, uint8_t* dst);

// One row of n interleaved pixels into planes[c] + offset (the tier's SIMD kernel).
void deinterleave_row(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes);
// With non-temporal stores (x86) for outputs past the caches; store_fence() after the
// last row of a thread makes them visible to the others.
void deinterleave_row_stream(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes);
void store_fence();
// Outputs at least this large skip the caches on their way to memory.
constexpr int64_t kStreamBytes = int64_t(4) << 20;
void deinterleave_row(const uint16_t* src, int64_t n, int channels, uint16_t* const* planes);
void interleave_row(const uint8_t* const* planes, int64_t n, int channels, uint8_t* dst);

}  // namespace tvops::io
