// The integer GEMV over quantised weights with their rows interleaved by 8 (quant_x8_layout.h): one 32-byte load holds
// 4 bytes of each of 8 rows, lane r being row r, so a block's unpacking, x's bytes and the scale arithmetic serve 8
// rows at once, the 8 rows come from one stream instead of eight, and the 8 sums land in the lanes of one vector with
// no horizontal add. One token's Q4_0 GEMV reads about twice as many bytes per second as the row-by-row kernel
// (quant_dots.h) on one thread from DRAM, 3x from L2 (bench/results/2026-12-06-q4-interleaved/q4x8proto.log).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/quant.h"
#include "level.h"
#include "quant_dots.h"
#include "quant_x8_layout.h"

#ifndef MVLLM_ALWAYS_INLINE
#define MVLLM_ALWAYS_INLINE __attribute__((always_inline))
#endif

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

// Asks for the bytes [2048, 2048 + n) past p of the weight stream: every cache line of a block, 2 KiB ahead (at ~20
// GB/s a core and ~100 ns from DRAM, about what must be in flight). One line a 144-byte Q4_0 block, 1 KiB ahead, left
// the others to the hardware prefetcher: 49 Q4_0 GEMVs of a stories110M step took a median 3.24 ms against 2.68 ms
// this way (bench/results/2026-12-07-cpu-round6/prefetch.log).
inline void x8_prefetch(const uint8_t* p, int n) {
  for (int o = 0; o < n; o += 64) __builtin_prefetch(p + 2048 + o, 0, 3);
}

inline int32_t x_word(const QBlock& xb, int i) {  // x's bytes [4i, 4i + 4) as one int32
  int32_t v;
  std::memcpy(&v, xb.q + 4 * i, 4);
  return v;
}

// Values [32 c, 32 c + 32) of a group's 8 rows, dequantised into dst[t * ld + r] (the GEMM's panel layout: the 8 rows
// of a value side by side). On AVX2 each 32-byte chunk already holds the 8 rows in its lanes, so byte i of every lane
// is one value of all 8 rows: shifted out, converted and scaled as one vector, with no transpose.
inline void x8_dequant8(int type, const uint8_t* g, int64_t c, float* dst, int64_t ld) {
#if defined(__AVX2__)
  const __m256i low4 = _mm256_set1_epi8(0xF), two = _mm256_set1_epi8(3), byte = _mm256_set1_epi32(0xFF);
  const auto lane_byte = [&](__m256i v, int i) {
    return _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(v, 8 * i), byte));
  };
  const auto half8 = [](const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  };
  if (type == kQ8_0) {
    const uint8_t* b = g + c * 272;
    const __m256 d8 = half8(b);
    for (int cc = 0; cc < 8; ++cc) {
      const __m256i v = load32(b + 16 + 32 * cc);
      for (int i = 0; i < 4; ++i)  // byte i of each lane, sign-extended
        _mm256_storeu_ps(
            dst + (4 * cc + i) * ld,
            _mm256_mul_ps(d8, _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 24 - 8 * i), 24))));
    }
    return;
  }
  // the 4-bit types and Q6_K: values a · q + o per row, q from nibble chunks (plus Q6_K's high bits)
  const uint8_t* chunks;
  __m256 a[2], o[2];  // for values 0..15 and 16..31 of the 32
  const uint8_t* high = nullptr;
  if (type == kQ4_0) {
    const uint8_t* b = g + c * 144;
    a[0] = a[1] = half8(b);
    o[0] = o[1] = _mm256_mul_ps(a[0], _mm256_set1_ps(-8.f));
    chunks = b + 16;
  } else if (type == kQ4_K) {
    const uint8_t* b = g + (c / 8) * 1152;
    const int j = int(c % 8);
    const __m256i a6 = load32(b + 32), b6 = load32(b + 64), w = load32(b + 96);  // quant.h's words a, b, c
    const __m256i lo6 = _mm256_set1_epi32(0x3f3f3f3f), lo4w = _mm256_set1_epi32(0x0f0f0f0f);
    const __m256i t2 = _mm256_set1_epi32(0x03030303);
    const __m256i sc = j < 4 ? _mm256_and_si256(a6, lo6)
                             : _mm256_or_si256(_mm256_and_si256(w, lo4w),
                                               _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(a6, 6), t2), 4));
    const __m256i mn = j < 4 ? _mm256_and_si256(b6, lo6)
                             : _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w, 4), lo4w),
                                               _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(b6, 6), t2), 4));
    a[0] = a[1] = _mm256_mul_ps(half8(b), lane_byte(sc, j % 4));
    o[0] = o[1] = _mm256_mul_ps(half8(b + 16), _mm256_sub_ps(_mm256_setzero_ps(), lane_byte(mn, j % 4)));
    chunks = b + 128 + 128 * j;
  } else {  // Q6_K
    const uint8_t* b = g + (c / 8) * 1680;
    const int u = int(c % 8);
    const __m256 d8 = half8(b);
    for (int h = 0; h < 2; ++h) {
      a[h] = _mm256_mul_ps(d8, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                   _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 16 + 16 * u + 8 * h)))));
      o[h] = _mm256_mul_ps(a[h], _mm256_set1_ps(-32.f));
    }
    chunks = b + 144 + 192 * u;
    high = chunks + 128;
  }
  for (int cc = 0; cc < 4; ++cc) {
    const __m256i v = load32(chunks + 32 * cc);
    __m256i q[2] = {_mm256_and_si256(v, low4), _mm256_and_si256(_mm256_srli_epi16(v, 4), low4)};
    if (high) {
      const __m256i hb = load32(high + 32 * (cc / 2));
      for (int h = 0; h < 2; ++h)
        q[h] = _mm256_or_si256(
            q[h], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4 * (cc & 1) + 2 * h), two), 4));
    }
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 4; ++i)
        _mm256_storeu_ps(dst + (16 * h + 4 * cc + i) * ld, _mm256_fmadd_ps(lane_byte(q[h], i), a[h], o[h]));
  }
#else
  float y[32];
  for (int r = 0; r < kX8Rows; ++r) {
    x8_dequant32(type, g, r, c, y);
    for (int t = 0; t < 32; ++t) dst[t * ld + r] = y[t];
  }
#endif
}

// out[8 m + r] = Σ w_r · x_m over one group's blocks32 values / 32, for M tokens (token m's blocks at x + m * ldx).
// Per unit of 32 values and row: Σ v · q exactly in integers, the offset (Q4_0's 8, Q6_K's 32) taken off there too
// through x's exact sums, and for Q6_K the two scales applied in integers (|Σ| < 2^24: the fp32 conversion is exact);
// then d_w · x.d times it in fp32, so the fp32 error is relative to Σ |w · x| with no offset term to cancel.
//
// Vnni (AVX-512 VNNI, x8_dots_vnni): each chunk's bytes multiplied and added into int32 lanes by one vpdpbusd instead
// of pmaddubsw, an int16 add and pmaddwd. No int16 sum saturates on the other path (its bounds, below), so the integer
// sums, and every bit of the result, are the same.
template <int M, bool Vnni = false>
MVLLM_ALWAYS_INLINE inline void x8_dots_impl(int type, const uint8_t* g, const QBlock* x, int64_t ldx, int64_t blocks32,
                                             float* out) {
#if defined(__AVX2__)
  const __m256i low4 = _mm256_set1_epi8(0xF), two = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  __m256 acc[M];
  for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
  // Σ over a unit's 4 chunks of v · x (int16 pairs at most 2 · 63 · 127, two of them added, then to int32)
  const auto unit_dot = [&](const __m256i* v, const QBlock& xb, int half) {
#if defined(__AVX512F__)
    if constexpr (Vnni) {
      __m256i s = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) s = _mm256_dpbusd_epi32(s, v[c], _mm256_set1_epi32(x_word(xb, 4 * half + c)));
      return s;
    }
#endif
    __m256i s[2];
    for (int p = 0; p < 2; ++p)
      s[p] = _mm256_madd_epi16(
          _mm256_add_epi16(_mm256_maddubs_epi16(v[2 * p], _mm256_set1_epi32(x_word(xb, 4 * half + 2 * p))),
                           _mm256_maddubs_epi16(v[2 * p + 1], _mm256_set1_epi32(x_word(xb, 4 * half + 2 * p + 1)))),
          ones);
    return _mm256_add_epi32(s[0], s[1]);
  };
  if (type == kQ4_0) {
    for (int64_t b = 0; b < blocks32; ++b, g += 144) {
      x8_prefetch(g, 144);
      __m256i lo[4], hi[4];
      for (int c = 0; c < 4; ++c) {
        const __m256i v = load32(g + 16 + 32 * c);
        lo[c] = _mm256_and_si256(v, low4);
        hi[c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      }
      const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
      for (int m = 0; m < M; ++m) {
        const QBlock& xb = x[m * ldx + b];
        const __m256i exact = _mm256_sub_epi32(_mm256_add_epi32(unit_dot(lo, xb, 0), unit_dot(hi, xb, 1)),
                                               _mm256_set1_epi32(8 * (xb.sum0 + xb.sum1)));
        acc[m] = _mm256_fmadd_ps(d8, _mm256_mul_ps(_mm256_cvtepi32_ps(exact), _mm256_set1_ps(xb.d)), acc[m]);
      }
    }
  } else if (type == kQ8_0) {
    // signed weights times signed x: |w| times x with w's sign (pmaddubsw pairs at most 2 · 128 · 127), to int32 at
    // once
    for (int64_t b = 0; b < blocks32; ++b, g += 272) {
      __builtin_prefetch(g + 1024, 0, 3);
      __builtin_prefetch(g + 1024 + 64, 0, 3);
      __builtin_prefetch(g + 1024 + 128, 0, 3);
      __builtin_prefetch(g + 1024 + 192, 0, 3);
      __m256i w[8], aw[8];
      for (int c = 0; c < 8; ++c) w[c] = load32(g + 16 + 32 * c), aw[c] = _mm256_sign_epi8(w[c], w[c]);
      const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
      for (int m = 0; m < M; ++m) {
        const QBlock& xb = x[m * ldx + b];
        __m256i s = _mm256_setzero_si256();
        for (int c = 0; c < 8; ++c) {
          const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(x_word(xb, c)), w[c]);
#if defined(__AVX512F__)
          if constexpr (Vnni) {
            s = _mm256_dpbusd_epi32(s, aw[c], xs);
            continue;
          }
#endif
          s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(aw[c], xs), ones));
        }
        acc[m] = _mm256_fmadd_ps(d8, _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(xb.d)), acc[m]);
      }
    }
  } else if (type == kQ4_K) {
    // per super-block: Σ_j x.d_j · sc_j · Σ q · x and Σ_j x.d_j · min_j · Σ x (integers within a sub-block), then
    // d and dmin once
    const __m256i lo6 = _mm256_set1_epi32(0x3f3f3f3f), lo4 = _mm256_set1_epi32(0x0f0f0f0f);
    const __m256i two32 = _mm256_set1_epi32(0x03030303), byte = _mm256_set1_epi32(0xFF);
    for (int64_t b = 0; b < blocks32; b += 8, g += 1152) {
      const __m256i a = load32(g + 32), bw = load32(g + 64), cw = load32(g + 96);
      const __m256i scm[4] = {
          _mm256_and_si256(a, lo6),  // scales 0..3, a byte each
          _mm256_or_si256(_mm256_and_si256(cw, lo4),
                          _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(a, 6), two32), 4)),  // scales 4..7
          _mm256_and_si256(bw, lo6),                                                                // mins 0..3
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(cw, 4), lo4),
                          _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(bw, 6), two32), 4)),  // mins 4..7
      };
      __m256 sd[M], sm[M];
      for (int m = 0; m < M; ++m) sd[m] = sm[m] = _mm256_setzero_ps();
      for (int j = 0; j < 8; ++j) {
        const uint8_t* unit = g + 128 + 128 * j;
        __builtin_prefetch(unit + 1024, 0, 3);
        __builtin_prefetch(unit + 1024 + 64, 0, 3);
        __m256i lo[4], hi[4];
        for (int c = 0; c < 4; ++c) {
          const __m256i v = load32(unit + 32 * c);
          lo[c] = _mm256_and_si256(v, low4);
          hi[c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        }
        const __m128i shift = _mm_cvtsi32_si128(8 * (j % 4));
        const __m256i sc = _mm256_and_si256(_mm256_srl_epi32(scm[j / 4], shift), byte);
        const __m256i mn = _mm256_and_si256(_mm256_srl_epi32(scm[2 + j / 4], shift), byte);
        for (int m = 0; m < M; ++m) {
          const QBlock& xb = x[m * ldx + b + j];
          const __m256 xd = _mm256_set1_ps(xb.d);
          const __m256i dot = _mm256_add_epi32(unit_dot(lo, xb, 0), unit_dot(hi, xb, 1));
          sd[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(sc, dot)), xd, sd[m]);
          sm[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(mn, _mm256_set1_epi32(xb.sum0 + xb.sum1))), xd,
                                  sm[m]);
        }
      }
      const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
      const __m256 m8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 16)));
      for (int m = 0; m < M; ++m) acc[m] = _mm256_fnmadd_ps(m8, sm[m], _mm256_fmadd_ps(d8, sd[m], acc[m]));
    }
  } else {
    for (int64_t b = 0; b < blocks32; b += 8, g += 1680) {
      const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
      for (int u = 0; u < 8; ++u) {
        const uint8_t* unit = g + 144 + 192 * u;
        __builtin_prefetch(unit + 1024, 0, 3);
        __builtin_prefetch(unit + 1024 + 64, 0, 3);
        __builtin_prefetch(unit + 1024 + 128, 0, 3);
        const __m256i h[2] = {load32(unit + 128), load32(unit + 160)};
        __m256i lo[4], hi[4];
        for (int c = 0; c < 4; ++c) {
          const __m256i v = load32(unit + 32 * c), hb = h[c / 2];
          const int sh = 4 * (c & 1);
          lo[c] = _mm256_or_si256(_mm256_and_si256(v, low4),
                                  _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, sh), two), 4));
          hi[c] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4),
                                  _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, sh + 2), two), 4));
        }
        const __m256i sc_lo = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + 16 + 16 * u)));
        const __m256i sc_hi =
            _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + 16 + 16 * u + 8)));
        for (int m = 0; m < M; ++m) {
          const QBlock& xb = x[m * ldx + b + u];
          const __m256i e_lo = _mm256_sub_epi32(unit_dot(lo, xb, 0), _mm256_set1_epi32(32 * xb.sum0));
          const __m256i e_hi = _mm256_sub_epi32(unit_dot(hi, xb, 1), _mm256_set1_epi32(32 * xb.sum1));
          const __m256i t = _mm256_add_epi32(_mm256_mullo_epi32(sc_lo, e_lo), _mm256_mullo_epi32(sc_hi, e_hi));
          acc[m] = _mm256_fmadd_ps(d8, _mm256_mul_ps(_mm256_cvtepi32_ps(t), _mm256_set1_ps(xb.d)), acc[m]);
        }
      }
    }
  }
  for (int m = 0; m < M; ++m) _mm256_storeu_ps(out + 8 * m, acc[m]);
#elif defined(MVLLM_NEON)
  // the same with sdot: a chunk's 32 bytes are two vectors, rows 0..3 and rows 4..7
  float32x4_t acc[M][2];
  for (int m = 0; m < M; ++m) acc[m][0] = acc[m][1] = vdupq_n_f32(0.f);
  const uint8x16_t low4 = vdupq_n_u8(0xF), two = vdupq_n_u8(3);
  // Σ over a unit's 4 chunks of v · x, rows 4j..4j+3
  const auto unit_dot = [&](const int8x16_t* v, const QBlock& xb, int half, int j) {
    int32x4_t s = vdupq_n_s32(0);
    for (int c = 0; c < 4; ++c)
      s = vdotq_s32(s, v[2 * c + j], vreinterpretq_s8_s32(vdupq_n_s32(x_word(xb, 4 * half + c))));
    return s;
  };
  const int step = type == kQ4_0 || type == kQ8_0 ? 1 : 8, bytes = x8_block_bytes(type);
  for (int64_t b = 0; b < blocks32 && type == kQ8_0; ++b, g += 272) {  // signed weights: sdot directly
    __builtin_prefetch(g + 1024, 0, 3);
    const float16x8_t dh = vreinterpretq_f16_u8(vld1q_u8(g));
    const float32x4_t d8[2] = {vcvt_f32_f16(vget_low_f16(dh)), vcvt_high_f32_f16(dh)};
    int8x16_t w[16];
    for (int i = 0; i < 16; ++i) w[i] = vld1q_s8(reinterpret_cast<const int8_t*>(g + 16 + 16 * i));
    for (int m = 0; m < M; ++m) {
      const QBlock& xb = x[m * ldx + b];
      for (int j = 0; j < 2; ++j) {
        int32x4_t t = vdupq_n_s32(0);
        for (int c = 0; c < 8; ++c) t = vdotq_s32(t, w[2 * c + j], vreinterpretq_s8_s32(vdupq_n_s32(x_word(xb, c))));
        acc[m][j] = vfmaq_f32(acc[m][j], d8[j], vmulq_n_f32(vcvtq_f32_s32(t), xb.d));
      }
    }
  }
  for (int64_t b = 0; b < blocks32 && type != kQ8_0; b += step, g += bytes) {
    const float16x8_t dh = vreinterpretq_f16_u8(vld1q_u8(g));
    const float32x4_t d8[2] = {vcvt_f32_f16(vget_low_f16(dh)), vcvt_high_f32_f16(dh)};
    uint32x4_t scm[4][2];  // Q4_K: scales 0..3, scales 4..7, mins 0..3, mins 4..7 (a byte each), rows 4j..4j+3
    float32x4_t sd[M][2], sm[M][2];
    if (type == kQ4_K)
      for (int j = 0; j < 2; ++j) {
        const uint32x4_t a = vld1q_u32(reinterpret_cast<const uint32_t*>(g + 32 + 16 * j));
        const uint32x4_t bw = vld1q_u32(reinterpret_cast<const uint32_t*>(g + 64 + 16 * j));
        const uint32x4_t cw = vld1q_u32(reinterpret_cast<const uint32_t*>(g + 96 + 16 * j));
        const uint32x4_t lo6 = vdupq_n_u32(0x3f3f3f3f), lo4 = vdupq_n_u32(0x0f0f0f0f), t2 = vdupq_n_u32(0x03030303);
        scm[0][j] = vandq_u32(a, lo6);
        scm[1][j] = vorrq_u32(vandq_u32(cw, lo4), vshlq_n_u32(vandq_u32(vshrq_n_u32(a, 6), t2), 4));
        scm[2][j] = vandq_u32(bw, lo6);
        scm[3][j] = vorrq_u32(vandq_u32(vshrq_n_u32(cw, 4), lo4), vshlq_n_u32(vandq_u32(vshrq_n_u32(bw, 6), t2), 4));
        for (int m = 0; m < M; ++m) sd[m][j] = sm[m][j] = vdupq_n_f32(0.f);
      }
    for (int u = 0; u < step; ++u) {
      const uint8_t* unit = type == kQ4_0 ? g + 16 : type == kQ4_K ? g + 128 + 128 * u : g + 144 + 192 * u;
      if (type == kQ4_0)
        x8_prefetch(g, 144);
      else
        __builtin_prefetch(unit + 1024, 0, 3);
      int8x16_t lo[8], hi[8];
      for (int i = 0; i < 8; ++i) {
        uint8x16_t l = vandq_u8(vld1q_u8(unit + 16 * i), low4), h = vshrq_n_u8(vld1q_u8(unit + 16 * i), 4);
        if (type == kQ6_K) {  // chunk i / 2's high bits: H0 or H1, the same 16 bytes of its rows
          const uint8x16_t hb = vld1q_u8(unit + 128 + 32 * (i / 4) + 16 * (i % 2));
          const int sh = 4 * ((i / 2) & 1);
          l = vorrq_u8(l, vshlq_n_u8(vandq_u8(vshlq_u8(hb, vdupq_n_s8(int8_t(-sh))), two), 4));
          h = vorrq_u8(h, vshlq_n_u8(vandq_u8(vshlq_u8(hb, vdupq_n_s8(int8_t(-sh - 2))), two), 4));
        }
        lo[i] = vreinterpretq_s8_u8(l);
        hi[i] = vreinterpretq_s8_u8(h);
      }
      for (int m = 0; m < M; ++m) {
        const QBlock& xb = x[m * ldx + b + u];
        for (int j = 0; j < 2; ++j) {
          if (type == kQ4_K) {
            const int32x4_t shift = vdupq_n_s32(-8 * (u % 4));
            const int32x4_t sc = vreinterpretq_s32_u32(vandq_u32(vshlq_u32(scm[u / 4][j], shift), vdupq_n_u32(0xFF)));
            const int32x4_t mn =
                vreinterpretq_s32_u32(vandq_u32(vshlq_u32(scm[2 + u / 4][j], shift), vdupq_n_u32(0xFF)));
            const int32x4_t dot = vaddq_s32(unit_dot(lo, xb, 0, j), unit_dot(hi, xb, 1, j));
            sd[m][j] = vfmaq_n_f32(sd[m][j], vcvtq_f32_s32(vmulq_s32(sc, dot)), xb.d);
            sm[m][j] = vfmaq_n_f32(sm[m][j], vcvtq_f32_s32(vmulq_s32(mn, vdupq_n_s32(xb.sum0 + xb.sum1))), xb.d);
            continue;
          }
          int32x4_t t;
          if (type == kQ4_0) {
            t = vsubq_s32(vaddq_s32(unit_dot(lo, xb, 0, j), unit_dot(hi, xb, 1, j)),
                          vdupq_n_s32(8 * (xb.sum0 + xb.sum1)));
          } else {
            const int8_t* sc = reinterpret_cast<const int8_t*>(g + 16 + 16 * u + 4 * j);
            const int32x4_t sc_lo = vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(sc))));
            const int32x4_t sc_hi = vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(sc + 8))));
            t = vaddq_s32(vmulq_s32(sc_lo, vsubq_s32(unit_dot(lo, xb, 0, j), vdupq_n_s32(32 * xb.sum0))),
                          vmulq_s32(sc_hi, vsubq_s32(unit_dot(hi, xb, 1, j), vdupq_n_s32(32 * xb.sum1))));
          }
          acc[m][j] = vfmaq_f32(acc[m][j], d8[j], vmulq_n_f32(vcvtq_f32_s32(t), xb.d));
        }
      }
    }
    if (type == kQ4_K) {
      const float16x8_t mh = vreinterpretq_f16_u8(vld1q_u8(g + 16));
      const float32x4_t m8[2] = {vcvt_f32_f16(vget_low_f16(mh)), vcvt_high_f32_f16(mh)};
      for (int m = 0; m < M; ++m)
        for (int j = 0; j < 2; ++j) acc[m][j] = vfmsq_f32(vfmaq_f32(acc[m][j], d8[j], sd[m][j]), m8[j], sm[m][j]);
    }
  }
  for (int m = 0; m < M; ++m) vst1q_f32(out + 8 * m, acc[m][0]), vst1q_f32(out + 8 * m + 4, acc[m][1]);
#else
  // Without vectors: the same integer sums, row by row (Q4_K: each chunk dequantised, then dotted with x's bytes).
  const int bytes = x8_block_bytes(type), per = x8_block_values(type) / 32;
  for (int i = 0; i < 8 * M; ++i) out[i] = 0.f;
  if (type == kQ8_0) {
    for (int64_t c = 0; c < blocks32; ++c, g += 272)
      for (int r = 0; r < kX8Rows; ++r) {
        const float d = quant_half(g + 2 * r);
        for (int m = 0; m < M; ++m) {
          const QBlock& xb = x[m * ldx + c];
          int32_t sum = 0;
          for (int t = 0; t < 32; ++t) sum += int8_t(g[16 + 32 * (t / 4) + 4 * r + t % 4]) * xb.q[t];
          out[8 * m + r] = std::fma(d, float(sum) * xb.d, out[8 * m + r]);  // as the vector levels round
        }
      }
    return;
  }
  if (type == kQ4_K) {
    for (int64_t c = 0; c < blocks32; ++c)
      for (int r = 0; r < kX8Rows; ++r) {
        float y[32];
        x8_dequant32(type, g, r, c, y);
        for (int m = 0; m < M; ++m) {
          const QBlock& xb = x[m * ldx + c];
          float s = 0.f;
          for (int t = 0; t < 32; ++t) s += y[t] * float(xb.q[t]);
          out[8 * m + r] += s * xb.d;
        }
      }
    return;
  }
  for (int64_t c = 0; c < blocks32; ++c) {
    const uint8_t* blk = g + (c / per) * bytes;
    const int u = int(c % per);
    for (int r = 0; r < kX8Rows; ++r) {
      const float d = quant_half(blk + 2 * r);
      for (int m = 0; m < M; ++m) {
        const QBlock& xb = x[m * ldx + c];
        int32_t s[2] = {0, 0};
        for (int t = 0; t < 16; ++t) {
          const int ci = t / 4, i = t % 4;
          if (type == kQ4_0) {
            const uint8_t v = blk[16 + 32 * ci + 4 * r + i];
            s[0] += ((v & 0xF) - 8) * xb.q[t];
            s[1] += ((v >> 4) - 8) * xb.q[t + 16];
          } else {
            const uint8_t* unit = blk + 144 + 192 * u;
            const uint8_t v = unit[32 * ci + 4 * r + i], h = unit[128 + 32 * (ci / 2) + 4 * r + i];
            const int sh = 4 * (ci & 1);
            s[0] += (((v & 0xF) | (((h >> sh) & 3) << 4)) - 32) * xb.q[t];
            s[1] += (((v >> 4) | (((h >> (sh + 2)) & 3) << 4)) - 32) * xb.q[t + 16];
          }
        }
        const int32_t t = type == kQ4_0
                              ? s[0] + s[1]
                              : int8_t(blk[16 + 8 * (2 * u) + r]) * s[0] + int8_t(blk[16 + 8 * (2 * u + 1) + r]) * s[1];
        out[8 * m + r] = std::fma(d, float(t) * xb.d, out[8 * m + r]);
      }
    }
  }
#endif
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
