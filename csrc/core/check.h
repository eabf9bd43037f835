// Argument checks that throw tvops::Error with a formatted message.
//   TVOPS_CHECK(cond, Value, "nms: boxes should be a 2d tensor, got ", d, "D");
#pragma once

#include <sstream>
#include <string>

#include "tvops/errors.h"

namespace tvops::detail {

template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, const Args&... args) {
  throw Error(kind, concat(args...));
}

// For kernels compiled per ISA tier: they format the message themselves (snprintf)
// and throw through this baseline function, so no shared template gets instantiated
// with wide-ISA flags (see kernels/cpu/README.md).
[[noreturn]] void throw_value_error(const char* message);

}  // namespace tvops::detail

#define TVOPS_CHECK(cond, kind, ...)                                        \
  do {                                                                      \
    if (!(cond)) ::tvops::detail::fail(::tvops::ErrorKind::kind, __VA_ARGS__); \
  } while (0)
