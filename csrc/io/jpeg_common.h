// libjpeg error handling shared by the JPEG decoder and encoder (internal).
//
// libjpeg reports fatal errors through error_exit, which must not return: it
// longjmps back to jpeg_guard(). longjmp skips C++ destructors, so every object
// with one lives outside the guarded lambdas (the codecs own buffers and tensors
// in the calling frame and hand raw pointers in), and the libjpeg object itself is
// destroyed by its owner's destructor.
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>

namespace tvops::io {

struct JpegError {
  jpeg_error_mgr pub;  // first member: libjpeg hands us &pub
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
};

// Installs the handlers: errors longjmp with the formatted message, warnings
// (corrupt but decodable data) stay silent and decoding goes on, as in torchvision.
void jpeg_install_error_handler(jpeg_common_struct* cinfo, JpegError* err);

// Records `message` and jumps back to the active jpeg_guard.
[[noreturn]] void jpeg_fail(jpeg_common_struct* cinfo, const char* message);

// Runs f(); true when it finished, false when libjpeg raised (message in err).
// f must not create objects with destructors.
template <typename F>
bool jpeg_guard(JpegError& err, F&& f) {
  if (setjmp(err.jump)) return false;
  f();
  return true;
}

}  // namespace tvops::io
