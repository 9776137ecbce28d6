// Quantised weights with their rows interleaved by 8 (packQuantWeight: the CPU's decode layout for Q4_0 and Q6_K): one
// 32-byte load holds 4 bytes of each of 8 rows, lane r being row r, so a block's unpacking, x's bytes and the scale
// arithmetic serve 8 rows at once, the 8 rows come from one stream instead of eight, and the 8 sums land in the lanes
// of one vector with no horizontal add. One token's Q4_0 GEMV reads about twice as many bytes per second as the
// row-by-row kernel (quant_dots.h) on one thread from DRAM, 3x from L2
// (bench/results/2026-12-06-q4-interleaved/q4x8proto.log).
//
// A group of 8 rows takes the same bytes as its rows did (8 * rowWords * 4); the bytes past its blocks are zero.
// Within a unit of 32 values, "nibble bytes" are 16 bytes whose byte t holds value t (low nibble) and value t + 16
// (high nibble), ggml's Q4_0 order; chunk c (0..3) of a unit holds row r's nibble bytes [4c, 4c + 4) at 4r.
//
// Q4_0, per block b (32 values) at b * 144: the 8 rows' fp16 scales (row r at 2r), then the unit's 4 chunks.
// Q4_K, per super-block (256 values) at sb * 1152: the 8 rows' fp16 d, then their fp16 dmin (16 bytes each); the 12
// bytes of 6-bit scales and mins as three 32-byte words, byte k of row r at 32 + 32 (k / 4) + 4r + k % 4 (so word w
// holds each row's bytes [4w, 4w + 4) in its lane, and quant.h's unpacking runs on 8 rows at once); then sub-blocks
// j = 0..7 (values 32j..32j+31) as 4 chunks of nibble bytes each, at 128 + 128j.
// Q6_K, per super-block (256 values) at sb * 1680: the 8 rows' fp16 d (16 bytes); the 16 int8 scales, scale k of row r
// at 16 + 8k + r (128 bytes); then units u = 0..7 (values 32u..32u+31) of 192 bytes each: the low 4 bits of the
// values as 4 chunks of nibble bytes, then two 32-byte words of the high 2 bits, H0 for chunks 0, 1 and H1 for chunks
// 2, 3: in row r's 4 bytes at 4r, byte i holds at bits [2m, 2m + 2) (m = 0..3) the high bits of value
// 4c + i + (m & 1 ? 16 : 0) of chunk c = 2k + (m >> 1).
#pragma once

#include <cstdint>
#include <cstring>

#include "../core/quant.h"
#include "level.h"
#include "quant_dots.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

constexpr int kX8Rows = 8;

// Bytes of one (super-)block of a group, and values per (super-)block.
inline int x8_block_bytes(int type) { return type == kQ6_K ? 8 * 210 : type == kQ4_K ? 8 * 144 : 8 * 18; }
inline int x8_block_values(int type) { return type == kQ4_0 ? 32 : 256; }

// Q4_K value 32j + l (0..15) of the ggml super-block at b.
inline int q4k_value(const uint8_t* b, int j, int l) { return (b[16 + 32 * (j / 2) + l] >> (4 * (j & 1))) & 0xF; }
// Row r's 12 bytes of Q4_K scales and mins from an interleaved super-block at g.
inline void q4k_scale_bytes(const uint8_t* g, int r, uint8_t* out) {
  for (int w = 0; w < 3; ++w) std::memcpy(out + 4 * w, g + 32 + 32 * w + 4 * r, 4);
}

// Q6_K value 32u + j (0..63, before the -32) of the ggml super-block at b, and its scale.
inline int q6k_value(const uint8_t* b, int u, int j) {
  const int half = u / 4, quarter = u % 4;
  const int low = (b[64 * half + (quarter & 1) * 32 + j] >> ((quarter >> 1) * 4)) & 0xF;
  return low | (((b[128 + 32 * half + j] >> (2 * quarter)) & 3) << 4);
}

// Writes a group's blocks from its 8 rows of ggml blocks (rows ldw bytes apart), nb blocks a row, and zeroes the rest
// of the group's `group_bytes`.
inline void x8_pack_group(int type, const uint8_t* rows, int64_t ldw, int64_t nb, uint8_t* dst, int64_t group_bytes) {
  const int bytes = x8_block_bytes(type);
  std::memset(dst, 0, size_t(group_bytes));
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* o = dst + b * bytes;
    for (int r = 0; r < kX8Rows; ++r) {
      if (type == kQ4_0) {
        const uint8_t* s = rows + r * ldw + b * 18;
        std::memcpy(o + 2 * r, s, 2);
        for (int c = 0; c < 4; ++c) std::memcpy(o + 16 + 32 * c + 4 * r, s + 2 + 4 * c, 4);
        continue;
      }
      if (type == kQ4_K) {
        const uint8_t* s = rows + r * ldw + b * 144;
        std::memcpy(o + 2 * r, s, 2);
        std::memcpy(o + 16 + 2 * r, s + 2, 2);
        for (int w = 0; w < 3; ++w) std::memcpy(o + 32 + 32 * w + 4 * r, s + 4 + 4 * w, 4);
        for (int j = 0; j < 8; ++j)
          for (int t = 0; t < 16; ++t)
            o[128 + 128 * j + 32 * (t / 4) + 4 * r + t % 4] =
                uint8_t(q4k_value(s, j, t) | (q4k_value(s, j, t + 16) << 4));
        continue;
      }
      const uint8_t* s = rows + r * ldw + b * 210;
      std::memcpy(o + 2 * r, s + 208, 2);
      for (int k = 0; k < 16; ++k) o[16 + 8 * k + r] = s[192 + k];
      for (int u = 0; u < 8; ++u) {
        uint8_t* unit = o + 144 + 192 * u;
        for (int t = 0; t < 16; ++t) {
          const int lo = q6k_value(s, u, t), hi = q6k_value(s, u, t + 16);
          const int c = t / 4, i = t % 4;
          unit[32 * c + 4 * r + i] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
          uint8_t& h = unit[128 + 32 * (c / 2) + 4 * r + i];
          h = uint8_t(h | ((lo >> 4) << (4 * (c & 1))) | ((hi >> 4) << (4 * (c & 1) + 2)));
        }
      }
    }
  }
}

// Values [32 c, 32 c + 32) of row r (0..7) of a group at g, dequantised.
inline void x8_dequant32(int type, const uint8_t* g, int r, int64_t c, float* y) {
  if (type == kQ4_0) {
    const uint8_t* b = g + c * 144;
    const float d = quant_half(b + 2 * r);
    for (int t = 0; t < 16; ++t) {
      const uint8_t v = b[16 + 32 * (t / 4) + 4 * r + t % 4];
      y[t] = d * float((v & 0xF) - 8);
      y[t + 16] = d * float((v >> 4) - 8);
    }
    return;
  }
  if (type == kQ4_K) {
    const uint8_t* b = g + (c / 8) * 1152;
    const int j = int(c % 8);
    uint8_t scales[12];
    q4k_scale_bytes(b, r, scales);
    int sc, mn;
    quant_k_scale_min(scales, j, &sc, &mn);
    const float a = quant_half(b + 2 * r) * float(sc), m = quant_half(b + 16 + 2 * r) * float(mn);
    for (int t = 0; t < 16; ++t) {
      const uint8_t v = b[128 + 128 * j + 32 * (t / 4) + 4 * r + t % 4];
      y[t] = a * float(v & 0xF) - m;
      y[t + 16] = a * float(v >> 4) - m;
    }
    return;
  }
  const uint8_t* b = g + (c / 8) * 1680;
  const int u = int(c % 8);
  const uint8_t* unit = b + 144 + 192 * u;
  const float d = quant_half(b + 2 * r);
  const float sc[2] = {d * float(int8_t(b[16 + 8 * (2 * u) + r])), d * float(int8_t(b[16 + 8 * (2 * u + 1) + r]))};
  for (int t = 0; t < 16; ++t) {
    const int ci = t / 4, i = t % 4;
    const uint8_t v = unit[32 * ci + 4 * r + i], h = unit[128 + 32 * (ci / 2) + 4 * r + i];
    const int sh = 4 * (ci & 1);
    y[t] = sc[0] * float(((v & 0xF) | (((h >> sh) & 3) << 4)) - 32);
    y[t + 16] = sc[1] * float(((v >> 4) | (((h >> (sh + 2)) & 3) << 4)) - 32);
  }
}

inline int32_t x_word(const QBlock& xb, int i) {  // x's bytes [4i, 4i + 4) as one int32
  int32_t v;
  std::memcpy(&v, xb.q + 4 * i, 4);
  return v;
}

// out[8 m + r] = Σ w_r · x_m over one group's blocks32 values / 32, for M tokens (token m's blocks at x + m * ldx).
// Per unit of 32 values and row: Σ v · q exactly in integers, the offset (Q4_0's 8, Q6_K's 32) taken off there too
// through x's exact sums, and for Q6_K the two scales applied in integers (|Σ| < 2^24: the fp32 conversion is exact);
// then d_w · x.d times it in fp32, so the fp32 error is relative to Σ |w · x| with no offset term to cancel.
template <int M>
inline void x8_dots(int type, const uint8_t* g, const QBlock* x, int64_t ldx, int64_t blocks32, float* out) {
#if defined(__AVX2__)
  const __m256i low4 = _mm256_set1_epi8(0xF), two = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  __m256 acc[M];
  for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
  // Σ over a unit's 4 chunks of v · x (int16 pairs at most 2 · 63 · 127, two of them added, then to int32)
  const auto unit_dot = [&](const __m256i* v, const QBlock& xb, int half) {
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
      __builtin_prefetch(g + 1024, 0, 3);  // ~7 blocks ahead in the one stream
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
  const int step = type == kQ4_0 ? 1 : 8, bytes = x8_block_bytes(type);
  for (int64_t b = 0; b < blocks32; b += step, g += bytes) {
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
        out[8 * m + r] += d * (float(t) * xb.d);
      }
    }
  }
#endif
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
