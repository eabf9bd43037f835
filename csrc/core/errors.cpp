#include "tvops/errors.h"

#include "core/check.h"

namespace tvops {

Error::Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

namespace detail {

void throw_value_error(const char* message) { throw Error(ErrorKind::Value, message); }

}  // namespace detail

}  // namespace tvops
