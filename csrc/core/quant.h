// GGUF's quantised block types, as ggml lays them out, and their dequantisation 32 values at a time (a "chunk": a
// whole block of the 32-value types, one of the 8 sub-blocks of a K type's 256). Shared by the CPU and CUDA kernels;
// lib/quant/formats.ts is the TypeScript reference, written from the same formats.
#pragma once

#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define MVLLM_HD __host__ __device__ __forceinline__
#else
#define MVLLM_HD inline
#endif

namespace mvllm {

// ggml's type ids.
enum QuantType : int { kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14 };

struct QuantFormat {
  int block;  // values per block
  int bytes;  // bytes per block
  const char* name;
};

// The format of ggml type `type`; false for a type we do not run.
inline bool quant_format(int64_t type, QuantFormat* f) {
  switch (type) {
    case kQ4_0: return *f = {32, 18, "Q4_0"}, true;
    case kQ4_1: return *f = {32, 20, "Q4_1"}, true;
    case kQ5_0: return *f = {32, 22, "Q5_0"}, true;
    case kQ5_1: return *f = {32, 24, "Q5_1"}, true;
    case kQ8_0: return *f = {32, 34, "Q8_0"}, true;
    case kQ4_K: return *f = {256, 144, "Q4_K"}, true;
    case kQ5_K: return *f = {256, 176, "Q5_K"}, true;
    case kQ6_K: return *f = {256, 210, "Q6_K"}, true;
    default: return false;
  }
}

// Bytes of one row of `cols` values (cols a multiple of the block), and the int32 words a row takes in memory: rows
// are padded to 4 bytes so that every row starts aligned (at most 3 bytes a row over the file's size).
inline int64_t quant_row_bytes(const QuantFormat& f, int64_t cols) { return cols / f.block * f.bytes; }
inline int64_t quant_row_words(const QuantFormat& f, int64_t cols) { return (quant_row_bytes(f, cols) + 3) / 4; }

MVLLM_HD float quant_half(const uint8_t* p) {
  const uint16_t h = uint16_t(p[0] | (p[1] << 8));
#ifdef __CUDA_ARCH__
  return __half2float(__ushort_as_half(h));
#else
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);
  } else if (exp == 0) {
    const float v = float(man) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  } else {
    u = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

// A K type's 6-bit scale and min of sub-block j (0..7), from the 12 packed bytes.
MVLLM_HD void quant_k_scale_min(const uint8_t* q, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// y[0..32) = values [32 chunk, 32 chunk + 32) of the block at `b` (chunk 0 for the 32-value types, 0..7 for K types).
MVLLM_HD void dequant_chunk(int type, const uint8_t* b, int chunk, float* y) {
  switch (type) {
    case kQ8_0: {
      const float d = quant_half(b);
      for (int l = 0; l < 32; ++l) y[l] = d * float(int8_t(b[2 + l]));
      break;
    }
    case kQ4_0:
    case kQ4_1: {
      const bool one = type == kQ4_1;
      const float d = quant_half(b), m = one ? quant_half(b + 2) : -8.f * d;
      const uint8_t* qs = b + (one ? 4 : 2);
      for (int l = 0; l < 16; ++l) {
        y[l] = d * float(qs[l] & 0xF) + m;
        y[l + 16] = d * float(qs[l] >> 4) + m;
      }
      break;
    }
    case kQ5_0:
    case kQ5_1: {
      const bool one = type == kQ5_1;
      const float d = quant_half(b), m = one ? quant_half(b + 2) : -16.f * d;
      const uint8_t* hb = b + (one ? 4 : 2);
      const uint32_t qh = uint32_t(hb[0]) | (uint32_t(hb[1]) << 8) | (uint32_t(hb[2]) << 16) | (uint32_t(hb[3]) << 24);
      const uint8_t* qs = hb + 4;
      for (int l = 0; l < 16; ++l) {
        y[l] = d * float((qs[l] & 0xF) | (((qh >> l) & 1u) << 4)) + m;
        y[l + 16] = d * float((qs[l] >> 4) | (((qh >> (l + 16)) & 1u) << 4)) + m;
      }
      break;
    }
    case kQ4_K:
    case kQ5_K: {
      int sc, mn;
      quant_k_scale_min(b + 4, chunk, &sc, &mn);
      const float d = quant_half(b) * float(sc), m = quant_half(b + 2) * float(mn);
      const bool five = type == kQ5_K;
      const uint8_t* qh = b + 16;
      const uint8_t* qs = b + (five ? 48 : 16) + 32 * (chunk / 2);
      const int shift = (chunk & 1) * 4;
      for (int l = 0; l < 32; ++l) {
        const int hi = five ? ((qh[l] >> chunk) & 1) << 4 : 0;
        y[l] = d * float(((qs[l] >> shift) & 0xF) | hi) - m;
      }
      break;
    }
    case kQ6_K: {
      const int half = chunk / 4, quarter = chunk % 4;
      const uint8_t* ql = b + 64 * half + (quarter & 1) * 32;
      const uint8_t* qh = b + 128 + 32 * half;
      const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192) + 8 * half + 2 * quarter;
      const float d = quant_half(b + 208);
      const int lshift = (quarter >> 1) * 4, hshift = 2 * quarter;
      for (int l = 0; l < 32; ++l) {
        const int q = (((ql[l] >> lshift) & 0xF) | (((qh[l] >> hshift) & 3) << 4)) - 32;
        y[l] = d * float(sc[l / 16]) * float(q);
      }
      break;
    }
    default: break;
  }
}

}  // namespace mvllm

#undef MVLLM_HD  // core/quant.h and core/random.h each define it for their own functions
