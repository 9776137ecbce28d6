// Integer dot products of a quantised weight row with a token's x quantised to 8 bits per 32 values (as llama.cpp's
// CPU backend does): a block's 32 products are exact in int32 (pmaddubsw, then pmaddwd), so the row costs a few
// instructions per 32 weights instead of converting each weight to fp32. The error this adds is x's rounding to
// 8 bits, at most half a step (amax / 254) per value; test/ops/quant.test.ts bounds it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/quant.h"
#include "vec.h"

namespace mvllm::cpu {

// 32 values of x: q = round(x / d), d = amax / 127; s0, s1 = d * the sums of q over values 0..15 and 16..31.
struct QBlock {
  float d, s0, s1;
  int8_t q[32];
};

inline void quantize_x(const float* x, int64_t k, QBlock* out) {
  for (int64_t b = 0; b < k / 32; ++b) {
    const float* v = x + 32 * b;
    QBlock& o = out[b];
#if defined(__AVX2__)
    __m256 a[4];
    __m256 m = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < 4; ++i) {
      a[i] = _mm256_loadu_ps(v + 8 * i);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, a[i]));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    o.d = amax / 127.f;
    const __m256 id = _mm256_set1_ps(amax > 0 ? 127.f / amax : 0.f);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(a[i], id));  // round to nearest even
    // int32 -> int8 in order: packs interleave 128-bit lanes, the permute puts them back
    const __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23),
                                                  _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q), p);
#else
    float amax = 0.f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[i]));
    o.d = amax / 127.f;
    const float id = amax > 0 ? 127.f / amax : 0.f;
    for (int i = 0; i < 32; ++i) o.q[i] = int8_t(std::nearbyint(v[i] * id));
#endif
    int s0 = 0, s1 = 0;
    for (int i = 0; i < 16; ++i) s0 += o.q[i], s1 += o.q[16 + i];
    o.s0 = o.d * float(s0);
    o.s1 = o.d * float(s1);
  }
}

#if defined(__AVX2__)
// 8 int32 sums of 4 products each, unsigned bytes a times signed bytes b, as fp32. pmaddubsw's int16 pairs stay exact
// for a <= 128 and |b| <= 127 (x's bytes never reach -128).
inline __m256 mul_sum_us8(__m256i a, __m256i b) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
}
inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
// 16 bytes of nibbles -> 32 bytes: the low nibbles first, then the high ones.
inline __m256i nibbles32(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), m = _mm_set1_epi8(0xF);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}
// Bit i of the 32-bit word at p -> byte i = 0x10 (set) or 0.
inline __m256i bits_to_16s(const uint8_t* p) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(x)),
                                             _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                               0x0101010101010101, 0x0000000000000000));
  const __m256i hit = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
                                        _mm256_set1_epi64x(-1));
  return _mm256_and_si256(hit, _mm256_set1_epi8(0x10));
}
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
#endif

// Σ w · x over a row of `blocks32` chunks of 32 (the weight row at `w`, x's blocks at `x`).
inline float quant_dot(int type, const uint8_t* w, const QBlock* x, int64_t blocks32) {
#if defined(__AVX2__)
  __m256 acc = _mm256_setzero_ps();
  float off = 0.f;  // the parts that are x's sums times a constant (mins, the -8 / -16 / -32 offsets)
  switch (type) {
    case kQ8_0:
      for (int64_t b = 0; b < blocks32; ++b, w += 34) {
        const __m256i q = load32(w + 2), xq = load32(x[b].q);
        const __m256 p = mul_sum_us8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(quant_half(w) * x[b].d), p, acc);
      }
      break;
    case kQ4_0:
    case kQ4_1:
    case kQ5_0:
    case kQ5_1: {
      const bool one = type == kQ4_1 || type == kQ5_1, five = type == kQ5_0 || type == kQ5_1;
      const int step = 18 + (one ? 2 : 0) + (five ? 4 : 0);
      const float base = five ? -16.f : -8.f;
      for (int64_t b = 0; b < blocks32; ++b, w += step) {
        const float d = quant_half(w);
        const uint8_t* qs = w + (one ? 4 : 2) + (five ? 4 : 0);
        __m256i q = nibbles32(qs);
        if (five) q = _mm256_or_si256(q, bits_to_16s(w + (one ? 4 : 2)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[b].d), mul_sum_us8(q, load32(x[b].q)), acc);
        off += (one ? quant_half(w + 2) : base * d) * (x[b].s0 + x[b].s1);
      }
      break;
    }
    case kQ4_K:
    case kQ5_K: {
      const bool five = type == kQ5_K;
      for (int64_t b = 0; b < blocks32; b += 8, w += five ? 176 : 144) {
        const float d = quant_half(w), dmin = quant_half(w + 2);
        const __m256i qh = five ? load32(w + 16) : _mm256_setzero_si256();
        const uint8_t* qs = w + (five ? 48 : 16);
        for (int j = 0; j < 8; ++j) {
          int sc, mn;
          quant_k_scale_min(w + 4, j, &sc, &mn);
          const QBlock& xb = x[b + j];
          __m256i q = _mm256_and_si256(_mm256_srl_epi16(load32(qs + 32 * (j / 2)), _mm_cvtsi32_si128((j & 1) * 4)),
                                       _mm256_set1_epi8(0xF));
          if (five) {
            const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)), _mm256_set1_epi8(1));
            q = _mm256_or_si256(q, _mm256_slli_epi16(hi, 4));
          }
          acc = _mm256_fmadd_ps(_mm256_set1_ps(d * float(sc) * xb.d), mul_sum_us8(q, load32(xb.q)), acc);
          off -= dmin * float(mn) * (xb.s0 + xb.s1);
        }
      }
      break;
    }
    case kQ6_K:
      for (int64_t b = 0; b < blocks32; b += 8, w += 210) {
        const float d = quant_half(w + 208);
        const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
        for (int j = 0; j < 8; ++j) {
          const int half = j / 4, quarter = j % 4;
          const __m256i ql = load32(w + 64 * half + (quarter & 1) * 32), qh = load32(w + 128 + 32 * half);
          const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128((quarter >> 1) * 4)),
                                              _mm256_set1_epi8(0xF));
          const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * quarter)),
                                              _mm256_set1_epi8(3));
          const __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));  // 0..63, the -32 below
          const QBlock& xb = x[b + j];
          const int8_t* s = sc + 8 * half + 2 * quarter;
          const __m256 scale = _mm256_set_m128(_mm_set1_ps(d * float(s[1]) * xb.d), _mm_set1_ps(d * float(s[0]) * xb.d));
          acc = _mm256_fmadd_ps(scale, mul_sum_us8(q, load32(xb.q)), acc);
          off -= 32.f * d * (float(s[0]) * xb.s0 + float(s[1]) * xb.s1);
        }
      }
      break;
    default: break;
  }
  return hsum(acc) + off;
#else
  // Without AVX2: each chunk dequantised, then dotted with x's 8-bit values.
  QuantFormat f{};
  quant_format(type, &f);
  const int per = f.block / 32;
  float sum = 0.f;
  for (int64_t b = 0; b < blocks32; ++b) {
    float y[32];
    dequant_chunk(type, w + (b / per) * f.bytes, int(b % per), y);
    float s = 0.f;
    for (int i = 0; i < 32; ++i) s += y[i] * float(x[b].q[i]);
    sum += s * x[b].d;
  }
  return sum;
#endif
}

}  // namespace mvllm::cpu
