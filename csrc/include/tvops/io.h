// Image codecs with torchvision.io's semantics (see OPS.md §11-14 in the design
// notes): JPEG through libjpeg-turbo, PNG through libpng. Decoders take the encoded
// bytes as a 1-d contiguous uint8 CPU tensor and return a contiguous CHW tensor
// (uint8; uint16 for 16-bit PNGs) with the same values torchvision returns (its
// CPU decoders return a strided view of HWC memory instead).
//
// Every error is a tvops::Error naming the function and argument, e.g.
// "decode_png: input: corrupt compressed data (incorrect data check)"; nothing
// leaks on any path, and hostile files (truncated, corrupt, decompression bombs)
// raise instead of crashing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tvops/export.h"
#include "tvops/tensor.h"

namespace tvops {

// torchvision.io.ImageReadMode, same values.
enum class ImageReadMode : int { Unchanged = 0, Gray = 1, GrayAlpha = 2, RGB = 3, RGBA = 4 };
// "UNCHANGED", "GRAY", "GRAY_ALPHA", "RGB", "RGB_ALPHA" or "RGBA", any case.
TVOPS_API ImageReadMode image_read_mode_from_string(const std::string& name);

// Decode to size (beyond torchvision), for loaders that resize or crop next.
// All members zero: the full image.
//  * crop_*: a rectangle of the full-size image, in the coordinates of the image
//    as returned (after EXIF orientation when that is applied); it must lie
//    inside the image. crop_height/crop_width 0 = the whole extent.
//  * min_height/min_width: JPEG decodes at the smallest DCT scale s = M/8 (M = 1..8)
//    at which the crop is still at least this large (no upscaling); the result is
//    the crop of the scaled image: rows floor(top*s) .. ceil((top+height)*s) of an
//    image ceil(H*s) tall (columns alike), counted in the file's own orientation.
//    Scaled JPEG decodes use libjpeg's merged (non-fancy) chroma upsampling, its fast
//    path at reduced sizes; full-size decodes keep torchvision's settings, and a crop
//    at full size equals the same region of a full decode exactly.
//    PNG has no scaled decode: the crop comes out at full size.
struct DecodeSize {
  int64_t min_height = 0, min_width = 0;
  int64_t crop_top = 0, crop_left = 0, crop_height = 0, crop_width = 0;
  bool is_full() const {
    return min_height <= 0 && min_width <= 0 && crop_top == 0 && crop_left == 0 && crop_height == 0 &&
           crop_width == 0;
  }
};

// JPEG (baseline, progressive, grayscale, RGB, CMYK/YCCK). mode: Unchanged gives
// the file's components (CMYK as stored), Gray 1 channel, RGB 3 (CMYK converted
// the way torchvision and Pillow do); GrayAlpha/RGBA raise, as in torchvision.
// libjpeg's defaults (ISLOW IDCT, fancy upsampling): bit-identical to torchvision
// with the same libjpeg-turbo. Corrupt-but-decodable entropy data decodes (libjpeg
// warnings), as in torchvision.
TVOPS_API Tensor decode_jpeg(const Tensor& data, ImageReadMode mode = ImageReadMode::Unchanged,
                             bool apply_exif_orientation = false, const DecodeSize& size = {});
// PNG: 1/2/4/8/16-bit, palette, gray(+alpha), RGB(A), interlaced. 16-bit files give
// uint16. Unchanged gives the stored channels (palette indices for palette files).
TVOPS_API Tensor decode_png(const Tensor& data, ImageReadMode mode = ImageReadMode::Unchanged,
                            bool apply_exif_orientation = false, const DecodeSize& size = {});
// JPEG or PNG by magic bytes; other formats raise "unsupported image format".
TVOPS_API Tensor decode_image(const Tensor& data, ImageReadMode mode = ImageReadMode::Unchanged,
                              bool apply_exif_orientation = false, const DecodeSize& size = {});
// decode_image of every element, spread over the CPU thread pool (tvops::num_threads()).
// The first failure raises, naming its index ("decode_images: data[3]: ...").
TVOPS_API std::vector<Tensor> decode_images(const std::vector<Tensor>& data,
                                            ImageReadMode mode = ImageReadMode::Unchanged,
                                            bool apply_exif_orientation = false, const DecodeSize& size = {});

// decode_jpeg of every element on the thread pool (torchvision's decode_jpeg of a list).
TVOPS_API std::vector<Tensor> decode_jpegs(const std::vector<Tensor>& data,
                                           ImageReadMode mode = ImageReadMode::Unchanged,
                                           bool apply_exif_orientation = false, const DecodeSize& size = {});

// GPU decode (torchvision's decode_jpegs_cuda): uint8 [C, H, W] on `device`, on
// ctx's stream. Builds without nvJPEG raise ErrorKind::Unsupported.
TVOPS_API std::vector<Tensor> decode_jpegs_cuda(const std::vector<Tensor>& data, ImageReadMode mode,
                                                Device device, const Context& ctx = {});
TVOPS_API bool has_nvjpeg();

// image: uint8 [C, H, W], C = 1 or 3 (any strides). libjpeg defaults (4:2:0 for RGB),
// baseline, quality 1..100: the same bytes as torchvision.io.encode_jpeg.
TVOPS_API Tensor encode_jpeg(const Tensor& image, int64_t quality = 75);
// image: [C, H, W] uint8 or uint16, C = 1..4 (torchvision: uint8 with 1 or 3);
// compression_level 0..9. Lossless.
TVOPS_API Tensor encode_png(const Tensor& image, int64_t compression_level = 6);

// The bytes of a file as uint8 [size] / writes a 1-d uint8 tensor to a file.
TVOPS_API Tensor read_file(const std::string& path);
TVOPS_API void write_file(const std::string& path, const Tensor& data);

// Decoders refuse images with more pixels (width x height) than this before
// allocating anything: a few hundred bytes can claim 65500 x 65500. Default
// 2^28 (16384 x 16384, 805 MB as RGB); 0 or negative: no limit. Process-wide.
TVOPS_API void set_max_image_pixels(int64_t pixels);
TVOPS_API int64_t max_image_pixels();

// "libjpeg-turbo 2.1.5", "libpng 1.6.39", or "" when the build has no such codec.
TVOPS_API std::string jpeg_library_version();
TVOPS_API std::string png_library_version();

}  // namespace tvops
