// Umbrella header: everything a C++ user of libtvops needs.
#pragma once

#include "tvops/errors.h"
#include "tvops/io.h"
#include "tvops/ops.h"
#include "tvops/runtime.h"
#include "tvops/tensor.h"
#include "tvops/version.h"
