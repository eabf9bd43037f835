// IEEE half and bfloat16 <-> float conversions in plain C++ (baseline code, any CPU).
#pragma once

#include <cstdint>
#include <cstring>

namespace tvops {

inline float bits_to_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t float_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float bfloat16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp != 0) return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_to_float(sign);
  int e = -1;  // subnormal: normalise
  do { ++e; mant <<= 1; } while ((mant & 0x400) == 0);
  return bits_to_float(sign | uint32_t(112 - e) << 23 | (mant & 0x3ff) << 13);
}

}  // namespace tvops
