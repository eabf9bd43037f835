#include "io/png_common.h"

#include <cstdio>

namespace tvops::io {

void png_on_error(png_structp png, png_const_charp message) {
  auto* m = static_cast<PngMessage*>(png_get_error_ptr(png));
  if (m) std::snprintf(m->text, sizeof(m->text), "%s", message ? message : "libpng error");
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

}  // namespace tvops::io
