// Exact (IEEE, correctly rounded) vector division for every tier. xsimd 8.1 divides
// float batches on aarch64 with a reciprocal estimate and Newton steps, which is off
// by an ulp now and then; results must equal torchvision's, so ARM uses fdiv.
#pragma once

#include <xsimd/xsimd.hpp>

#include <type_traits>

#include "kernels/cpu/tier.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace tvops::cpu::TVOPS_CPU_TIER {
namespace {

template <typename T>
inline xsimd::batch<T> div_exact(const xsimd::batch<T>& a, const xsimd::batch<T>& b) {
#if defined(__aarch64__)
  if constexpr (std::is_same_v<T, float>) return xsimd::batch<float>(vdivq_f32(a, b));
#endif
  return a / b;
}

}  // namespace
}  // namespace tvops::cpu::TVOPS_CPU_TIER
