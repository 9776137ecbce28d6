// Integer dot products of a quantised weight row with a token's x quantised to 8 bits per 32 values (as llama.cpp's
// CPU backend does): a block's 32 products are exact in int32 (x86: pmaddubsw, then pmaddwd; neon: sdot), so the row
// costs a few instructions per 32 weights instead of converting each weight to fp32. The error this adds is x's
// rounding to 8 bits, at most half a step (amax / 254) per value; test/ops/quant.test.ts bounds it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/quant.h"
#include "level.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

// 32 values of x: q = round(x / d), d = amax / 127; s0, s1 = d * the sums of q over values 0..15 and 16..31; sum0,
// sum1 = those sums exact (quant_x8.h takes the types' offsets off in integers).
struct QBlock {
  float d, s0, s1;
  int16_t sum0, sum1;
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
    const __m256i p =
        _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q), p);
#elif defined(MVLLM_NEON)
    float32x4_t a[8];
    float32x4_t m = vdupq_n_f32(0.f);
    for (int i = 0; i < 8; ++i) {
      a[i] = vld1q_f32(v + 4 * i);
      m = vmaxq_f32(m, vabsq_f32(a[i]));
    }
    const float amax = vmaxvq_f32(m);
    o.d = amax / 127.f;
    const float id = amax > 0 ? 127.f / amax : 0.f;
    for (int i = 0; i < 4; ++i) {  // round to nearest even, int32 -> int16 -> int8 (|q| <= 127: no saturation)
      const int16x8_t h = vcombine_s16(vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(a[2 * i], id))),
                                       vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(a[2 * i + 1], id))));
      vst1_s8(o.q + 8 * i, vmovn_s16(h));
    }
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
    o.sum0 = int16_t(s0);
    o.sum1 = int16_t(s1);
  }
}

// What the K types read of x per super-block as vectors, laid out by quantize_x_sides for one token's nb blocks:
// [0, nb) each block's d, [nb, 2 nb) its s0 + s1, [2 nb, 4 nb) its (s0, s1) pairs.
inline void quantize_x_sides(const QBlock* q, int64_t nb, float* out) {
  for (int64_t b = 0; b < nb; ++b) {
    out[b] = q[b].d;
    out[nb + b] = q[b].s0 + q[b].s1;
    out[2 * nb + 2 * b] = q[b].s0;
    out[2 * nb + 2 * b + 1] = q[b].s1;
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
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(x)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
  const __m256i hit =
      _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi64x(-1));
  return _mm256_and_si256(hit, _mm256_set1_epi8(0x10));
}
inline float half_to_f32(const uint8_t* p) {
#if defined(__F16C__)
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
#else
  return quant_half(p);
#endif
}
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
// A Q4_K / Q5_K super-block's 12 bytes of 6-bit scales and mins (core/quant.h's quant_k_scale_min, all 16 at once): the
// 8 scales and the 8 mins as fp32 vectors.
inline void k_scales_mins(const uint8_t* p, __m256* sc, __m256* mn) {
  uint32_t a, b, c;
  std::memcpy(&a, p, 4);
  std::memcpy(&b, p + 4, 4);
  std::memcpy(&c, p + 8, 4);
  const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, two = 0x03030303u;
  const uint32_t sc03 = a & lo6, mn03 = b & lo6;
  const uint32_t sc47 = (c & lo4) | (((a >> 6) & two) << 4), mn47 = ((c >> 4) & lo4) | (((b >> 6) & two) << 4);
  *sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, int(sc47), int(sc03))));
  *mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, int(mn47), int(mn03))));
}
// lane j of v in every lane
inline __m256 lane(__m256 v, int j) { return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(j)); }
#endif

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu

#if defined(MVLLM_NEON)
#include "quant_dots_neon.h"
#endif

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

// out[m] = Σ w · x_m over a row of `blocks32` chunks of 32 for M tokens (token m's blocks at x + m * ldx): each
// weight block is unpacked once and multiplied with every token's bytes.
// xf: quantize_x_sides of each token, ldf floats apart (the K types read their scales' products and offsets from it).
template <int M>
inline void quant_dots(int type, const uint8_t* w, const QBlock* x, int64_t ldx, const float* xf, int64_t ldf,
                       int64_t blocks32, float* out) {
#if defined(__AVX2__)
  __m256 acc[M];
  float off[M];  // the parts that are x's sums times a constant (mins, the -8 / -16 / -32 offsets)
  for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps(), off[m] = 0.f;
  switch (type) {
    case kQ8_0:
      for (int64_t b = 0; b < blocks32; ++b, w += 34) {
        const float d = half_to_f32(w);
        const __m256i q = load32(w + 2), aq = _mm256_sign_epi8(q, q);
        for (int m = 0; m < M; ++m) {
          const QBlock& xb = x[m * ldx + b];
          const __m256 p = mul_sum_us8(aq, _mm256_sign_epi8(load32(xb.q), q));
          acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), p, acc[m]);
        }
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
        const float d = half_to_f32(w), c = one ? half_to_f32(w + 2) : base * d;
        __m256i q = nibbles32(w + (one ? 4 : 2) + (five ? 4 : 0));
        if (five) q = _mm256_or_si256(q, bits_to_16s(w + (one ? 4 : 2)));
        for (int m = 0; m < M; ++m) {
          const QBlock& xb = x[m * ldx + b];
          acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), mul_sum_us8(q, load32(xb.q)), acc[m]);
          off[m] += c * (xb.s0 + xb.s1);
        }
      }
      break;
    }
    case kQ4_K:
    case kQ5_K: {
      // per super-block: its 8 scales and mins decoded at once, times x's 8 scales (and sums) as vectors; each 32
      // bytes of nibbles load once for two sub-blocks
      const bool five = type == kQ5_K;
      const __m256i low4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
      __m256 offv[M];
      for (int m = 0; m < M; ++m) offv[m] = _mm256_setzero_ps();
      for (int64_t b = 0; b < blocks32; b += 8, w += five ? 176 : 144) {
        __m256 sc, mn;
        k_scales_mins(w + 4, &sc, &mn);
        sc = _mm256_mul_ps(sc, _mm256_set1_ps(half_to_f32(w)));
        mn = _mm256_mul_ps(mn, _mm256_set1_ps(half_to_f32(w + 2)));
        __m256 dsx[M];  // sub-block j's scale times token m's d, in lane j
        for (int m = 0; m < M; ++m) {
          const float* f = xf + m * ldf;
          dsx[m] = _mm256_mul_ps(sc, _mm256_loadu_ps(f + b));
          offv[m] = _mm256_fnmadd_ps(mn, _mm256_loadu_ps(f + blocks32 + b), offv[m]);  // - dmin·min·(s0 + s1)
        }
        __m256i qh = five ? load32(w + 16) : _mm256_setzero_si256();
        const uint8_t* qs = w + (five ? 48 : 16);
        for (int p = 0; p < 4; ++p) {
          const __m256i bytes = load32(qs + 32 * p);
          __m256i q[2] = {_mm256_and_si256(bytes, low4), _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4)};
          if (five) {  // bits 2p and 2p + 1 of qh: the fifth bits of the two sub-blocks
            q[0] = _mm256_or_si256(q[0], _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
            q[1] = _mm256_or_si256(q[1], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
            qh = _mm256_srli_epi16(qh, 2);
          }
          for (int h = 0; h < 2; ++h) {
            const int j = 2 * p + h;
            for (int m = 0; m < M; ++m)
              acc[m] = _mm256_fmadd_ps(lane(dsx[m], j), mul_sum_us8(q[h], load32(x[m * ldx + b + j].q)), acc[m]);
          }
        }
      }
      for (int m = 0; m < M; ++m) off[m] += hsum(offv[m]);
      break;
    }
    case kQ6_K: {
      // per half of 128: 64 bytes of low bits and 32 of high bits give four sub-blocks of 32; the 16 scales (one per
      // 16 values) as two vectors, times x's d (each sub-block's twice) and its (s0, s1) for the -32 offsets
      const __m256i low4 = _mm256_set1_epi8(0xF), two = _mm256_set1_epi8(3);
      const __m256i pairs = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3),
                    pairs_hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
      __m256 offv[M];
      for (int m = 0; m < M; ++m) offv[m] = _mm256_setzero_ps();
      for (int64_t b = 0; b < blocks32; b += 8, w += 210) {
        const __m256 d = _mm256_set1_ps(half_to_f32(w + 208));
        const __m128i sc16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192));
        const __m256 sc[2] = {_mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc16))),
                              _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc16, 8))))};
        alignas(32) float dsx[M][16];  // value-16 group k's scale times its sub-block's x d
        for (int m = 0; m < M; ++m) {
          const float* f = xf + m * ldf;
          const __m256 xd = _mm256_loadu_ps(f + b);
          _mm256_store_ps(dsx[m], _mm256_mul_ps(sc[0], _mm256_permutevar8x32_ps(xd, pairs)));
          _mm256_store_ps(dsx[m] + 8, _mm256_mul_ps(sc[1], _mm256_permutevar8x32_ps(xd, pairs_hi)));
          const float* s01 = f + 2 * blocks32 + 2 * b;
          offv[m] = _mm256_fnmadd_ps(sc[0], _mm256_loadu_ps(s01), offv[m]);
          offv[m] = _mm256_fnmadd_ps(sc[1], _mm256_loadu_ps(s01 + 8), offv[m]);
        }
        for (int half = 0; half < 2; ++half) {
          const __m256i l0 = load32(w + 64 * half), l1 = load32(w + 64 * half + 32), qh = load32(w + 128 + 32 * half);
          const __m256i q[4] = {
              _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, two), 4)),
              _mm256_or_si256(_mm256_and_si256(l1, low4),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4)),
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4)),
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4)),
          };  // 0..63 each, the -32 above
          for (int quarter = 0; quarter < 4; ++quarter) {
            const int j = 4 * half + quarter;
            for (int m = 0; m < M; ++m) {
              const __m256 scale =
                  _mm256_set_m128(_mm_broadcast_ss(&dsx[m][2 * j + 1]), _mm_broadcast_ss(&dsx[m][2 * j]));
              acc[m] = _mm256_fmadd_ps(scale, mul_sum_us8(q[quarter], load32(x[m * ldx + b + j].q)), acc[m]);
            }
          }
        }
      }
      // the offsets are 32 times the scales' dot product with x's sums
      for (int m = 0; m < M; ++m) off[m] += 32.f * hsum(offv[m]);
      break;
    }
    default: break;
  }
  for (int m = 0; m < M; ++m) out[m] = hsum(acc[m]) + off[m];
#elif defined(MVLLM_NEON)
  quant_dots_neon<M>(type, w, x, ldx, xf, ldf, blocks32, out);
#else
  // Without AVX2: each chunk dequantised, then dotted with x's 8-bit values.
  QuantFormat f{};
  quant_format(type, &f);
  const int per = f.block / 32;
  for (int m = 0; m < M; ++m) out[m] = 0.f;
  for (int64_t b = 0; b < blocks32; ++b) {
    float y[32];
    dequant_chunk(type, w + (b / per) * f.bytes, int(b % per), y);
    for (int m = 0; m < M; ++m) {
      const QBlock& xb = x[m * ldx + b];
      float s = 0.f;
      for (int i = 0; i < 32; ++i) s += y[i] * float(xb.q[i]);
      out[m] += s * xb.d;
    }
  }
#endif
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
