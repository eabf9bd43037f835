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

}  // namespace tvops::io
