// Symbol visibility: libtvops is built with -fvisibility=hidden; only what carries
// TVOPS_API is exported, so the ABI surface is deliberate.
#pragma once

#if defined(TVOPS_BUILDING_LIBRARY)
#define TVOPS_API __attribute__((visibility("default")))
#else
#define TVOPS_API
#endif
