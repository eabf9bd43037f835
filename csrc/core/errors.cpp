#include "tvops/errors.h"

namespace tvops {

Error::Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

}  // namespace tvops
