// libpng error handling shared by the PNG decoder and encoder (internal).
//
// libpng reports errors by calling our error function, which records the message
// and longjmps back to png_guard(); throwing a C++ exception through libpng's C
// frames instead would be undefined (and is how torchvision 0.29 crashes on corrupt
// IDAT data). Objects with destructors stay outside the guarded lambdas; the png
// structs are freed by their owner's destructor.
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <string>

#include <png.h>

namespace tvops::io {

struct PngMessage {
  char text[256] = {0};
};

// libpng callbacks: errors record into the PngMessage passed as error pointer and
// jump back; warnings are dropped (libpng would print them).
void png_on_error(png_structp png, png_const_charp message);
void png_on_warning(png_structp png, png_const_charp message);

template <typename F>
bool png_guard(png_structp png, F&& f) {
  if (setjmp(png_jmpbuf(png))) return false;
  f();
  return true;
}

// png_pipeline.cpp: inflate and unfilter on two threads for non-interlaced 8-bit
// files read without conversion. data/size: the whole file; idat_at: the offset of
// the first IDAT chunk (its length field). Rows y0..y1, columns x0..x1 of the image
// go to out ([channels, y1 - y0, x1 - x0]). Returns "" or the error.
struct PngPipelineJob {
  const uint8_t* data;
  std::size_t size, idat_at;
  int64_t W;
  int channels;
  int64_t y0, y1, x0, x1;
  uint8_t* out;
};
std::string png_decode_pipelined(const PngPipelineJob& job);

}  // namespace tvops::io
