// __half and __nv_bfloat16 for the emulated device: 16-bit storage, conversions through the project's bit-exact host
// conversions (core/dtype.h: round to nearest even). A NaN converts to the canonical NaN 0x7fff, as cvt.rn does on
// the device.
#pragma once

#include <cstdint>

#include "../core/dtype.h"

struct __half {
  uint16_t __x;
  __half() = default;
  __half(float f) : __x(f != f ? uint16_t(0x7fff) : ::mvllm::float_to_f16(f)) {}  // NOLINT: implicit, as in CUDA
  operator float() const { return ::mvllm::f16_to_float(__x); }                   // NOLINT
};

struct __nv_bfloat16 {
  uint16_t __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f) : __x(f != f ? uint16_t(0x7fff) : ::mvllm::float_to_bf16(f)) {}  // NOLINT
  operator float() const { return ::mvllm::bf16_to_float(__x); }                          // NOLINT
};

inline float __half2float(__half h) { return float(h); }
inline __half __float2half_rn(float f) { return __half(f); }
inline __half __float2half(float f) { return __half(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return float(h); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
