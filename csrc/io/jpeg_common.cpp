#include "io/jpeg_common.h"

#include <cstring>

namespace tvops::io {

namespace {

void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_output_message(j_common_ptr) {}  // libjpeg would print warnings to stderr

}  // namespace

void jpeg_install_error_handler(jpeg_common_struct* cinfo, JpegError* err) {
  cinfo->err = jpeg_std_error(&err->pub);
  err->pub.error_exit = on_error_exit;
  err->pub.output_message = on_output_message;
  err->message[0] = '\0';
}

void jpeg_fail(jpeg_common_struct* cinfo, const char* message) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  std::snprintf(err->message, sizeof(err->message), "%s", message);
  std::longjmp(err->jump, 1);
}

}  // namespace tvops::io
