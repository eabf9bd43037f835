// The tvops::Context of one binding call: the caller's CUDA stream, and the output
// allocator this thread has in scope (torch's caching allocator while a torch custom
// op runs a CUDA kernel; tvops' own allocator otherwise). See torch_allocator.cpp.
#pragma once

#include <cstdint>

#include "tvops/tvops.h"

tvops::Context call_context(uintptr_t stream);
