// The one exception type of tvops. Messages name the op and the argument
// ("nms: boxes should be a 2d tensor, got 3D") so callers and the Python layer
// can report them unchanged.
#pragma once

#include <stdexcept>
#include <string>

#include "tvops/export.h"

namespace tvops {

// What went wrong, so bindings can map it to the matching Python exception.
enum class ErrorKind {
  Value,         // bad shape, size or value            -> ValueError / RuntimeError
  Type,          // wrong dtype                         -> TypeError
  Device,        // wrong device, or no usable device   -> RuntimeError
  Unsupported,   // this build or machine cannot do it  -> RuntimeError / ImportError
  Runtime,       // failure inside a kernel or library  -> RuntimeError
};

class TVOPS_API Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message);
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace tvops
