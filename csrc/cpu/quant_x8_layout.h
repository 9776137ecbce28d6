// The layouts of quantised weights with their rows interleaved by 8 (packQuantWeight: the CPU's decode layout for
// Q4_0, Q8_0, Q4_K and Q6_K; quant_x8.h's kernels read them): packing from ggml's blocks, and one row's values back.
// lib/reference/quant.ts is the TypeScript twin, written from this description.
//
// A group of 8 rows takes the same bytes as its rows did (8 * rowWords * 4); the bytes past its blocks are zero.
// Within a unit of 32 values, "nibble bytes" are 16 bytes whose byte t holds value t (low nibble) and value t + 16
// (high nibble), ggml's Q4_0 order; chunk c (0..3) of a unit holds row r's nibble bytes [4c, 4c + 4) at 4r.
//
// Q4_0, per block b (32 values) at b * 144: the 8 rows' fp16 scales (row r at 2r), then the unit's 4 chunks.
// Q8_0, per block b (32 values) at b * 272: the 8 rows' fp16 scales, then 8 chunks of 32 bytes, chunk c holding row r's
// bytes [4c, 4c + 4) at 4r.
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

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

constexpr int kX8Rows = 8;

// Bytes of one (super-)block of a group, and values per (super-)block.
inline int x8_block_bytes(int type) {
  return type == kQ6_K ? 8 * 210 : type == kQ4_K ? 8 * 144 : type == kQ8_0 ? 8 * 34 : 8 * 18;
}
inline int x8_block_values(int type) { return type == kQ4_0 || type == kQ8_0 ? 32 : 256; }

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
      if (type == kQ8_0) {
        const uint8_t* s = rows + r * ldw + b * 34;
        std::memcpy(o + 2 * r, s, 2);
        for (int c = 0; c < 8; ++c) std::memcpy(o + 16 + 32 * c + 4 * r, s + 2 + 4 * c, 4);
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
  if (type == kQ8_0) {
    const uint8_t* b = g + c * 272;
    const float d = quant_half(b + 2 * r);
    for (int t = 0; t < 32; ++t) y[t] = d * float(int8_t(b[16 + 32 * (t / 4) + 4 * r + t % 4]));
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

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
