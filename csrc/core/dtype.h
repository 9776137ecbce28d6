// Storage dtypes and their exact host conversions (round-to-nearest-even, NaN kept quiet).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace mvllm {

enum class DType : int { Float32 = 0, Float16 = 1, BFloat16 = 2, Int32 = 3 };

// Tag types for 16-bit storage on the host; CUDA code uses __half / __nv_bfloat16 instead.
struct f16 {
  uint16_t bits;
};
struct bf16 {
  uint16_t bits;
};

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float16: return 2;
    case DType::BFloat16: return 2;
    case DType::Int32: return 4;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Int32: return "int32";
  }
  return "unknown";
}

inline bool parse_dtype(const std::string& s, DType* out) {
  for (DType t : {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32})
    if (s == dtype_name(t)) return *out = t, true;
  return false;
}

inline bool is_float(DType t) { return t != DType::Int32; }

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float bf16_to_float(uint16_t h) { return bits_float(uint32_t(h) << 16); }

inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float f16_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    if (man == 0) return bits_float(sign);
    // subnormal: value = man * 2^-24
    float v = float(man) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

inline uint16_t float_to_f16(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);                        // rounds to >= 65520: infinity
  if (a < 0x38800000u) {
    // result is subnormal or zero: round a * 2^24 to an integer, ties to even
    float v = bits_float(a) * 16777216.0f;  // exact: scaling by a power of two
    uint32_t i = uint32_t(v);
    float frac = v - float(i);
    if (frac > 0.5f || (frac == 0.5f && (i & 1u))) ++i;
    return uint16_t(sign | i);
  }
  uint32_t mant_odd = (a >> 13) & 1u;
  a += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
  return uint16_t(sign | (a >> 13));
}

}  // namespace mvllm

// Runs the statement with T bound to the storage type of a float dtype, as a backend names the three types: the CPU
// (float, f16, bf16) and CUDA (float, __half, __nv_bfloat16) dispatch macros are this one.
#define MVLLM_DISPATCH_FLOAT_AS(dtype, T, F32, F16, BF16, ...) \
  switch (dtype) {                                             \
    case ::mvllm::DType::Float32: {                            \
      using T = F32;                                           \
      __VA_ARGS__;                                             \
      break;                                                   \
    }                                                          \
    case ::mvllm::DType::Float16: {                            \
      using T = F16;                                           \
      __VA_ARGS__;                                             \
      break;                                                   \
    }                                                          \
    case ::mvllm::DType::BFloat16: {                           \
      using T = BF16;                                          \
      __VA_ARGS__;                                             \
      break;                                                   \
    }                                                          \
    default: break;                                            \
  }
