// Included by every per-tier kernel file. The build compiles each file in
// kernels/cpu/ once per ISA tier with -DTVOPS_CPU_TIER=<namespace> and the tier's
// flags (cmake/variants.json). Rules for these files: everything lives in
// namespace tvops::cpu::TVOPS_CPU_TIER, and nothing runs at load time (no
// namespace-scope objects with constructors): wide instructions in a static
// initializer would crash older CPUs before the compatibility check runs.
#pragma once

#ifndef TVOPS_CPU_TIER
#error "kernels/cpu files are compiled once per ISA tier with -DTVOPS_CPU_TIER=<tier>"
#endif

#define TVOPS_STRINGIFY_(x) #x
#define TVOPS_STRINGIFY(x) TVOPS_STRINGIFY_(x)
