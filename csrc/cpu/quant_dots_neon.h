// quant_dots.h's integer dot products on the neon level: the x86 levels' algorithm with sdot (16 bytes of weights
// times 16 of x into 4 int32 lanes), then one fp32 FMA per block with the product of the scales. Included by
// quant_dots.h, after QBlock.
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "../core/quant.h"
#include "level.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

inline float half_to_f32(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return float(h);
}
// Σ a·b over 32 signed bytes (a0, a1: 16 each; b at pb) as 4 int32 lanes: two sdot.
inline int32x4_t dot32(int8x16_t a0, int8x16_t a1, const int8_t* pb) {
  return vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, vld1q_s8(pb)), a1, vld1q_s8(pb + 16));
}
// Byte i of the 16 = 0x10 where bit i of the 16-bit word at p is set, else 0 (a Q5 type's fifth bits).
inline uint8x16_t bits_to_16s(const uint8_t* p) {
  const uint8x16_t bytes = vcombine_u8(vdup_n_u8(p[0]), vdup_n_u8(p[1]));
  const uint8x16_t bit = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  return vandq_u8(vtstq_u8(bytes, bit), vdupq_n_u8(0x10));
}
// A K type's 8 scales and 8 mins (6 bits each, quant.h's quant_k_scale_min) from its 12 bytes, as two fp32 vectors
// each: the same word arithmetic as the x86 levels' k_scales_mins.
inline void k_scales_mins(const uint8_t* p, float32x4_t* sc, float32x4_t* mn) {
  uint32_t a, b, c;
  std::memcpy(&a, p, 4);
  std::memcpy(&b, p + 4, 4);
  std::memcpy(&c, p + 8, 4);
  const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, two = 0x03030303u;
  const uint32_t w[4] = {a & lo6, (c & lo4) | (((a >> 6) & two) << 4), b & lo6,
                         ((c >> 4) & lo4) | (((b >> 6) & two) << 4)};
  const uint16x8_t s16 = vmovl_u8(vld1_u8(reinterpret_cast<const uint8_t*>(w)));
  const uint16x8_t m16 = vmovl_u8(vld1_u8(reinterpret_cast<const uint8_t*>(w + 2)));
  sc[0] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(s16)));
  sc[1] = vcvtq_f32_u32(vmovl_u16(vget_high_u16(s16)));
  mn[0] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(m16)));
  mn[1] = vcvtq_f32_u32(vmovl_u16(vget_high_u16(m16)));
}

template <int M>
inline void quant_dots_neon(int type, const uint8_t* w, const QBlock* x, int64_t ldx, const float* xf, int64_t ldf,
                            int64_t blocks32, float* out) {
  float32x4_t acc[M];
  float off[M];
  for (int m = 0; m < M; ++m) acc[m] = vdupq_n_f32(0.f), off[m] = 0.f;
  switch (type) {
    case kQ8_0:
      for (int64_t b = 0; b < blocks32; ++b, w += 34) {
        const float d = half_to_f32(w);
        const int8x16_t q0 = vld1q_s8(reinterpret_cast<const int8_t*>(w + 2)),
                        q1 = vld1q_s8(reinterpret_cast<const int8_t*>(w + 18));
        for (int m = 0; m < M; ++m) {
          const QBlock& xb = x[m * ldx + b];
          acc[m] = vfmaq_n_f32(acc[m], vcvtq_f32_s32(dot32(q0, q1, xb.q)), d * xb.d);
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
      const uint8x16_t low4 = vdupq_n_u8(0xF);
      for (int64_t b = 0; b < blocks32; ++b, w += step) {
        const float d = half_to_f32(w), c = one ? half_to_f32(w + 2) : base * d;
        const uint8x16_t bytes = vld1q_u8(w + (one ? 4 : 2) + (five ? 4 : 0));
        uint8x16_t q0 = vandq_u8(bytes, low4), q1 = vshrq_n_u8(bytes, 4);  // values 0..15, then 16..31
        if (five) {
          const uint8_t* qh = w + (one ? 4 : 2);
          q0 = vorrq_u8(q0, bits_to_16s(qh));
          q1 = vorrq_u8(q1, bits_to_16s(qh + 2));
        }
        const int8x16_t s0 = vreinterpretq_s8_u8(q0), s1 = vreinterpretq_s8_u8(q1);
        for (int m = 0; m < M; ++m) {
          const QBlock& xb = x[m * ldx + b];
          acc[m] = vfmaq_n_f32(acc[m], vcvtq_f32_s32(dot32(s0, s1, xb.q)), d * xb.d);
          off[m] += c * (xb.s0 + xb.s1);
        }
      }
      break;
    }
    case kQ4_K:
    case kQ5_K: {
      const bool five = type == kQ5_K;
      const uint8x16_t low4 = vdupq_n_u8(0xF), one = vdupq_n_u8(1);
      float32x4_t offv[M];
      for (int m = 0; m < M; ++m) offv[m] = vdupq_n_f32(0.f);
      for (int64_t b = 0; b < blocks32; b += 8, w += five ? 176 : 144) {
        float32x4_t sc[2], mn[2];
        k_scales_mins(w + 4, sc, mn);
        const float d = half_to_f32(w), dmin = half_to_f32(w + 2);
        alignas(16) float dsx[M][8];  // sub-block j's scale times token m's d
        for (int m = 0; m < M; ++m) {
          const float* f = xf + m * ldf;
          for (int h = 0; h < 2; ++h) {
            vst1q_f32(dsx[m] + 4 * h, vmulq_f32(vmulq_n_f32(sc[h], d), vld1q_f32(f + b + 4 * h)));
            offv[m] = vfmsq_f32(offv[m], vmulq_n_f32(mn[h], dmin), vld1q_f32(f + blocks32 + b + 4 * h));
          }
        }
        const uint8_t* qh = w + 16;
        const uint8_t* qs = w + (five ? 48 : 16);
        for (int p = 0; p < 4; ++p) {
          uint8x16_t q[2][2];  // [sub-block 2p, 2p + 1][first, second 16 bytes]
          for (int i = 0; i < 2; ++i) {
            const uint8x16_t bytes = vld1q_u8(qs + 32 * p + 16 * i);
            q[0][i] = vandq_u8(bytes, low4);
            q[1][i] = vshrq_n_u8(bytes, 4);
            if (five) {  // bits 2p and 2p + 1 of qh: the fifth bits of the two sub-blocks
              const uint8x16_t hb = vld1q_u8(qh + 16 * i);
              q[0][i] = vorrq_u8(q[0][i], vshlq_n_u8(vandq_u8(vshlq_u8(hb, vdupq_n_s8(int8_t(-2 * p))), one), 4));
              q[1][i] = vorrq_u8(q[1][i], vshlq_n_u8(vandq_u8(vshlq_u8(hb, vdupq_n_s8(int8_t(-2 * p - 1))), one), 4));
            }
          }
          for (int h = 0; h < 2; ++h) {
            const int j = 2 * p + h;
            const int8x16_t a0 = vreinterpretq_s8_u8(q[h][0]), a1 = vreinterpretq_s8_u8(q[h][1]);
            for (int m = 0; m < M; ++m)
              acc[m] = vfmaq_n_f32(acc[m], vcvtq_f32_s32(dot32(a0, a1, x[m * ldx + b + j].q)), dsx[m][j]);
          }
        }
      }
      for (int m = 0; m < M; ++m) off[m] += vaddvq_f32(offv[m]);
      break;
    }
    case kQ6_K: {
      // per half of 128: 64 bytes of low bits and 32 of high bits give four sub-blocks of 32; a scale per 16 values,
      // so each sub-block's two halves take one sdot each
      const uint8x16_t low4 = vdupq_n_u8(0xF), two = vdupq_n_u8(3);
      for (int64_t b = 0; b < blocks32; b += 8, w += 210) {
        const float d = half_to_f32(w + 208);
        const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
        for (int half = 0; half < 2; ++half) {
          for (int i = 0; i < 2; ++i) {  // the first and second 16 bytes of each run of 32
            const uint8x16_t l0 = vld1q_u8(w + 64 * half + 16 * i), l1 = vld1q_u8(w + 64 * half + 32 + 16 * i);
            const uint8x16_t qh = vld1q_u8(w + 128 + 32 * half + 16 * i);
            const uint8x16_t q[4] = {
                vorrq_u8(vandq_u8(l0, low4), vshlq_n_u8(vandq_u8(qh, two), 4)),
                vorrq_u8(vandq_u8(l1, low4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), two), 4)),
                vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), two), 4)),
                vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4)),
            };  // 0..63 each, the -32 below
            for (int quarter = 0; quarter < 4; ++quarter) {
              const int j = 4 * half + quarter;
              const float s = d * float(sc[2 * j + i]);
              for (int m = 0; m < M; ++m) {
                const QBlock& xb = x[m * ldx + b + j];
                const int32x4_t dot =
                    vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(q[quarter]), vld1q_s8(xb.q + 16 * i));
                acc[m] = vfmaq_n_f32(acc[m], vcvtq_f32_s32(dot), s * xb.d);
                off[m] -= 32.f * s * (i ? xb.s1 : xb.s0);
              }
            }
          }
        }
      }
      break;
    }
    default: break;
  }
  for (int m = 0; m < M; ++m) out[m] = vaddvq_f32(acc[m]) + off[m];
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
