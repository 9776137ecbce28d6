// Q4_0 with its rows interleaved by 8 (packQuantWeight, the CPU's decode layout for Q4_0): one 32-byte load holds 4
// bytes of each of 8 rows, so a block's unpacking, x's bytes and the scale arithmetic serve 8 rows at once, and the
// 8 rows come from one stream instead of eight. One token's integer GEMV reads Q4_0 at about twice the rate of the
// row-by-row kernel (quant_dots.h) on one thread from DRAM, and 3x from L2
// (bench/results/2026-12-06-q4-interleaved/q4x8proto.log).
//
// The layout: rows in groups of 8; a group takes the same bytes as its 8 rows did (8 * rowWords * 4) and holds, for
// block b of the row, at b * 144:
//   [0, 16)    the 8 rows' fp16 scales, row r at 2r;
//   [16, 144)  4 chunks of 32 bytes: chunk c holds row r's nibble bytes [4c, 4c + 4) at 4r.
// A byte's low nibble is value j of its row's block, its high nibble value j + 16 (ggml's Q4_0 order), so in chunk c
// the low nibbles are values 4c..4c+3 and the high ones 16+4c..16+4c+3 of each row. The group's bytes past its
// blocks are zero.
#pragma once

#include <cstdint>
#include <cstring>

#include "level.h"
#include "quant_dots.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

constexpr int kX8Rows = 8, kX8BlockBytes = 144;

// Writes group g's blocks from its 8 rows of plain Q4_0 blocks (rows ldw bytes apart), nb blocks a row, and zeroes
// the rest of the group's `group_bytes`.
inline void x8_pack_group(const uint8_t* rows, int64_t ldw, int64_t nb, uint8_t* dst, int64_t group_bytes) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* o = dst + b * kX8BlockBytes;
    for (int r = 0; r < kX8Rows; ++r) {
      const uint8_t* s = rows + r * ldw + b * 18;
      std::memcpy(o + 2 * r, s, 2);
      for (int c = 0; c < 4; ++c) std::memcpy(o + 16 + 32 * c + 4 * r, s + 2 + 4 * c, 4);
    }
  }
  std::memset(dst + nb * kX8BlockBytes, 0, size_t(group_bytes - nb * kX8BlockBytes));
}

// Row r's plain 18-byte Q4_0 block from a group's block at g.
inline void x8_unpack_block(const uint8_t* g, int r, uint8_t* out) {
  std::memcpy(out, g + 2 * r, 2);
  for (int c = 0; c < 4; ++c) std::memcpy(out + 2 + 4 * c, g + 16 + 32 * c + 4 * r, 4);
}

inline int32_t x_word(const QBlock& xb, int i) {  // x's bytes [4i, 4i + 4) as one int32
  int32_t v;
  std::memcpy(&v, xb.q + 4 * i, 4);
  return v;
}

// out[8 m + r] = Σ w_r · x_m over one group's nb blocks, for M tokens (token m's blocks at x + m * ldx). Per block and
// row: Σ (nibble - 8) · q exactly in integers (Σ nibble · q, less 8 Σ q), then d_w · x.d times it in fp32: the fp32
// error is relative to Σ |w · x|, with no offset term to cancel.
template <int M>
inline void x8_dots(const uint8_t* g, const QBlock* x, int64_t ldx, int64_t nb, float* out) {
#if defined(__AVX2__)
  const __m256i low4 = _mm256_set1_epi8(0xF), ones = _mm256_set1_epi16(1);
  __m256 acc[M];
  for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, g += kX8BlockBytes) {
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
      // int16 lanes: each pmaddubsw pair is at most 2 · 15 · 127, and 8 of them stay below 32767
      __m256i s = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c)
        s = _mm256_add_epi16(s, _mm256_add_epi16(_mm256_maddubs_epi16(lo[c], _mm256_set1_epi32(x_word(xb, c))),
                                                 _mm256_maddubs_epi16(hi[c], _mm256_set1_epi32(x_word(xb, 4 + c)))));
      const __m256i exact = _mm256_sub_epi32(_mm256_madd_epi16(s, ones), _mm256_set1_epi32(8 * xb.sum));
      acc[m] = _mm256_fmadd_ps(d8, _mm256_mul_ps(_mm256_cvtepi32_ps(exact), _mm256_set1_ps(xb.d)), acc[m]);
    }
  }
  for (int m = 0; m < M; ++m) _mm256_storeu_ps(out + 8 * m, acc[m]);
#elif defined(MVLLM_NEON)
  // the same with sdot: a chunk's 32 bytes are two vectors, rows 0..3 and rows 4..7
  float32x4_t acc[M][2];
  for (int m = 0; m < M; ++m) acc[m][0] = acc[m][1] = vdupq_n_f32(0.f);
  const uint8x16_t low4 = vdupq_n_u8(0xF);
  for (int64_t b = 0; b < nb; ++b, g += kX8BlockBytes) {
    __builtin_prefetch(g + 1024, 0, 3);
    int8x16_t lo[8], hi[8];
    for (int i = 0; i < 8; ++i) {
      const uint8x16_t v = vld1q_u8(g + 16 + 16 * i);
      lo[i] = vreinterpretq_s8_u8(vandq_u8(v, low4));
      hi[i] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    }
    const float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(g));
    const float32x4_t d8[2] = {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
    for (int m = 0; m < M; ++m) {
      const QBlock& xb = x[m * ldx + b];
      int32x4_t s[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
      for (int c = 0; c < 4; ++c) {
        const int8x16_t xl = vreinterpretq_s8_s32(vdupq_n_s32(x_word(xb, c)));
        const int8x16_t xh = vreinterpretq_s8_s32(vdupq_n_s32(x_word(xb, 4 + c)));
        for (int j = 0; j < 2; ++j) s[j] = vdotq_s32(vdotq_s32(s[j], lo[2 * c + j], xl), hi[2 * c + j], xh);
      }
      const int32x4_t off = vdupq_n_s32(8 * xb.sum);
      for (int j = 0; j < 2; ++j)
        acc[m][j] = vfmaq_f32(acc[m][j], d8[j], vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(s[j], off)), xb.d));
    }
  }
  for (int m = 0; m < M; ++m) vst1q_f32(out + 8 * m, acc[m][0]), vst1q_f32(out + 8 * m + 4, acc[m][1]);
#else
  for (int i = 0; i < 8 * M; ++i) out[i] = 0.f;
  for (int64_t b = 0; b < nb; ++b, g += kX8BlockBytes)
    for (int r = 0; r < kX8Rows; ++r) {
      uint8_t blk[18];
      x8_unpack_block(g, r, blk);
      const float d = quant_half(blk);
      for (int m = 0; m < M; ++m) {
        const QBlock& xb = x[m * ldx + b];
        int32_t s = 0;
        for (int j = 0; j < 16; ++j) s += (blk[2 + j] & 0xF) * xb.q[j] + (blk[2 + j] >> 4) * xb.q[16 + j];
        out[8 * m + r] += d * (float(s - 8 * xb.sum) * xb.d);
      }
    }
#endif
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
