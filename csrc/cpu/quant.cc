// Quantised weights on the CPU (ggml's block types, core/quant.h): the linear layer and the embedding dequantise the
// blocks as they read them; the weight stays quantised in memory.
//
// Few tokens (decode): GEMV in integers, as llama.cpp's CPU backend: each token's x is quantised to 8 bits per 32
// values and every weight block dotted with it by byte multiplies (quant_dots.h), so the weight is read once, at its
// quantised size, for a few instructions per 32 weights. Many tokens (prefill): the float GEMM (gemm.h), whose weight
// panels are dequantised instead of converted, block by block, paid once per 288 tokens; x stays fp32 there.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "../core/op_checks.h"
#include "dispatch.h"
#include "gemm.h"
#include "level.h"
#include "parallel.h"
#include "quant_dots.h"
#include "quant_x8_dispatch.h"
#include "vec.h"

// The integer dot products (quant_dots.h, quant_x8.h) and the dequantisers here are written for AVX2 (and NEON) only.
// The avx512 level has none of its own: it runs the level below's (level.h) for every path built on them, the GEMV
// (up to kQuantGemvMaxTokens tokens) and the embeddings. Its GEMM (gemm.h's 32-wide panels) is its own.
#if defined(__AVX512F__) && defined(MVLLM_CPU_LEVEL_BELOW)
#define MVLLM_QUANT_DOTS_BELOW 1
namespace mvllm::cpu::MVLLM_CPU_LEVEL_BELOW {
decltype(check_quant_linear) quant_linear;
decltype(check_quant_linear_packed) quant_linear_packed;
decltype(check_quant_embedding) quant_embedding;
decltype(check_quant_embedding_packed) quant_embedding_packed;
}  // namespace mvllm::cpu::MVLLM_CPU_LEVEL_BELOW
#endif

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

#if defined(__AVX2__)
// 32 values of a Q8_0 block: int8 -> fp32, times the block's scale.
inline void dequant_q8_0(const uint8_t* b, float* y) {
  const __m256 d = _mm256_set1_ps(half_to_f32(b));
  for (int i = 0; i < 4; ++i) {
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + 8 * i));
    _mm256_storeu_ps(y + 8 * i, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
  }
}
// y[i] = a * q[i] + c for 32 unsigned bytes q, with (a0, c0) for values 0..15 and (a1, c1) for 16..31.
inline void bytes_to_floats(__m256i q, float a0, float c0, float a1, float c1, float* y) {
  const __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
  const __m256 a[2] = {_mm256_set1_ps(a0), _mm256_set1_ps(a1)}, c[2] = {_mm256_set1_ps(c0), _mm256_set1_ps(c1)};
  for (int h = 0; h < 2; ++h) {
    const __m256i lo = _mm256_cvtepu8_epi32(halves[h]), hi = _mm256_cvtepu8_epi32(_mm_srli_si128(halves[h], 8));
    _mm256_storeu_ps(y + 16 * h, _mm256_fmadd_ps(a[h], _mm256_cvtepi32_ps(lo), c[h]));
    _mm256_storeu_ps(y + 16 * h + 8, _mm256_fmadd_ps(a[h], _mm256_cvtepi32_ps(hi), c[h]));
  }
}
#endif

// y[0..32) = chunk `chunk` of the block at b: on AVX2 each type's 32 unsigned bytes are built in registers (the
// same unpacking as quant_dots.h), then scaled once.
inline void dequant32(int type, const uint8_t* b, int chunk, float* y) {
#if defined(__AVX2__)
  switch (type) {
    case kQ8_0: return dequant_q8_0(b, y);
    case kQ4_0:
    case kQ4_1:
    case kQ5_0:
    case kQ5_1: {
      const bool one = type == kQ4_1 || type == kQ5_1, five = type == kQ5_0 || type == kQ5_1;
      const float d = half_to_f32(b), c = one ? half_to_f32(b + 2) : (five ? -16.f : -8.f) * d;
      __m256i q = nibbles32(b + (one ? 4 : 2) + (five ? 4 : 0));
      if (five) q = _mm256_or_si256(q, bits_to_16s(b + (one ? 4 : 2)));
      return bytes_to_floats(q, d, c, d, c, y);
    }
    case kQ4_K:
    case kQ5_K: {
      const bool five = type == kQ5_K;
      int sc, mn;
      quant_k_scale_min(b + 4, chunk, &sc, &mn);
      const float a = half_to_f32(b) * float(sc), c = -half_to_f32(b + 2) * float(mn);
      __m256i q = _mm256_and_si256(
          _mm256_srl_epi16(load32(b + (five ? 48 : 16) + 32 * (chunk / 2)), _mm_cvtsi32_si128((chunk & 1) * 4)),
          _mm256_set1_epi8(0xF));
      if (five) {
        const __m256i hi =
            _mm256_and_si256(_mm256_srl_epi16(load32(b + 16), _mm_cvtsi32_si128(chunk)), _mm256_set1_epi8(1));
        q = _mm256_or_si256(q, _mm256_slli_epi16(hi, 4));
      }
      return bytes_to_floats(q, a, c, a, c, y);
    }
    case kQ6_K: {
      const int half = chunk / 4, quarter = chunk % 4;
      const __m256i lo = _mm256_and_si256(
          _mm256_srl_epi16(load32(b + 64 * half + (quarter & 1) * 32), _mm_cvtsi32_si128((quarter >> 1) * 4)),
          _mm256_set1_epi8(0xF));
      const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(load32(b + 128 + 32 * half), _mm_cvtsi32_si128(2 * quarter)),
                                          _mm256_set1_epi8(3));
      const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192) + 8 * half + 2 * quarter;
      const float d = half_to_f32(b + 208), a0 = d * float(sc[0]), a1 = d * float(sc[1]);
      return bytes_to_floats(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), a0, -32.f * a0, a1, -32.f * a1, y);
    }
    default: break;
  }
#endif
  dequant_chunk(type, b, chunk, y);
}

// How far ahead of the row being read gemv asks for the rows to come: the kernel does a few instructions per cache
// line, so the out-of-order window holds only a few lines in flight and the hardware prefetcher alone left a Q4_0 GEMV
// latency-bound on weights from L3 or DRAM (2304 x 768 on one thread: 198 us without, 98 us with 2 KiB ahead;
// bench/results/2026-12-06-cpu-round2/gemv-harness.log).
constexpr int64_t kPrefetchBytes = 2048;

// Each token's x (fp32, rows ldx apart) quantised to 8 bits per 32 values into the calling thread's scratch, grown
// once: no allocation per call on the decode path. The K types also read quantize_x_sides (xf, 4 nb floats a token).
// (The pool's threads read the scratch through the returned pointers: inside a task, thread_local names their own.)
struct QuantizedX {
  const QBlock* qb;
  const float* xf;
};
inline QuantizedX quantize_tokens(const float* x, int64_t ldx, int64_t tokens, int64_t k_len, bool sides) {
  const int64_t nb = k_len / 32;
  static thread_local std::vector<QBlock> scratch;
  static thread_local std::vector<float> side_scratch;
  if (scratch.size() < size_t(tokens * nb)) scratch.resize(size_t(tokens * nb));
  if (sides && side_scratch.size() < size_t(tokens * 4 * nb)) side_scratch.resize(size_t(tokens * 4 * nb));
  for (int64_t m = 0; m < tokens; ++m) {
    quantize_x(x + m * ldx, k_len, scratch.data() + m * nb);
    if (sides) quantize_x_sides(scratch.data() + m * nb, nb, side_scratch.data() + m * 4 * nb);
  }
  return {scratch.data(), side_scratch.data()};
}

// x quantised once per call; then every weight row is dotted with every token's blocks in integers (quant_dots.h). A
// row is read from memory once: the other tokens find it in L1.
template <typename TA>
void gemv(const TensorView& out, const float* x, int64_t ldx, const TensorView& weight, int type, int64_t k_len,
          const float* bias) {
  const int64_t tokens = out.size(0), n_out = weight.size(0), ldw = weight.stride(0) * 4, nb = k_len / 32;
  QuantFormat f{};
  quant_format(type, &f);
  const QuantizedX qx = quantize_tokens(x, ldx, tokens, k_len, f.block == 256);  // the K types read xf
  const QBlock* const qb = qx.qb;
  const float* const xf = qx.xf;
  const uint8_t* w = static_cast<const uint8_t*>(weight.data);
  TA* o = out.ptr<TA>();
  const int64_t ldo = out.stride(0);
  // ~64 KiB of weight per task at least, so waking a thread pays off
  parallel_for(n_out, std::max<int64_t>(1, (64 << 10) / std::max<int64_t>(1, ldw)), [&](int64_t n0, int64_t n1) {
    const int64_t ahead = std::max<int64_t>(1, kPrefetchBytes / ldw);
    for (int64_t b = 0; b < std::min(ahead, n1 - n0) * ldw; b += 64) __builtin_prefetch(w + n0 * ldw + b, 0, 3);
    for (int64_t n = n0; n < n1; ++n) {
      const uint8_t* row = w + n * ldw;
      if (n + ahead < n1)
        for (int64_t b = 0; b < ldw; b += 64) __builtin_prefetch(row + ahead * ldw + b, 0, 3);
      for (int64_t m0 = 0; m0 < tokens; m0 += 4) {
        float s[4];
        const QBlock* xm = qb + m0 * nb;
        const int64_t mt = std::min<int64_t>(4, tokens - m0);
        switch (mt) {
          case 1: quant_dots<1>(type, row, xm, nb, xf + m0 * 4 * nb, 4 * nb, nb, s); break;
          case 2: quant_dots<2>(type, row, xm, nb, xf + m0 * 4 * nb, 4 * nb, nb, s); break;
          case 3: quant_dots<3>(type, row, xm, nb, xf + m0 * 4 * nb, 4 * nb, nb, s); break;
          default: quant_dots<4>(type, row, xm, nb, xf + m0 * 4 * nb, 4 * nb, nb, s); break;
        }
        for (int64_t m = 0; m < mt; ++m) o[(m0 + m) * ldo + n] = from_float<TA>(s[m] + (bias ? bias[n] : 0.f));
      }
    }
  });
}

// gemv over a weight interleaved by 8 rows (quant_x8.h): a group of 8 rows at a time, each read once, as one stream.
template <typename TA>
void gemv_x8(const TensorView& out, const float* x, int64_t ldx, const TensorView& packed, int type, int64_t k_len,
             const float* bias) {
  const int64_t tokens = out.size(0), groups = packed.size(0) / kX8Rows, ldg = packed.stride(0) * 4 * kX8Rows;
  const int64_t nb = k_len / 32;
  const QBlock* const qb = quantize_tokens(x, ldx, tokens, k_len, false).qb;
  const uint8_t* w = static_cast<const uint8_t*>(packed.data);
  TA* o = out.ptr<TA>();
  const int64_t ldo = out.stride(0);
  const bool vnni = x8_vnni();
  parallel_for(groups, std::max<int64_t>(1, (64 << 10) / std::max<int64_t>(1, ldg)), [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      for (int64_t m0 = 0; m0 < tokens; m0 += 4) {
        float s[4 * kX8Rows];
        const uint8_t* gp = w + g * ldg;
        const QBlock* xm = qb + m0 * nb;
        const int64_t mt = std::min<int64_t>(4, tokens - m0);
        x8_dots_n(mt, vnni, type, gp, xm, nb, nb, s);
        for (int64_t m = 0; m < mt; ++m)
          for (int r = 0; r < kX8Rows; ++r) {
            const int64_t n = kX8Rows * g + r;
            o[(m0 + m) * ldo + n] = from_float<TA>(s[kX8Rows * m + r] + (bias ? bias[n] : 0.f));
          }
      }
  });
}

// What the dequantising GEMM reads of a quantised weight: `chunk(n, c, y)` writes values [32 c, 32 c + 32) of row n
// (plain rows: dequant32 of the row's block; interleaved: the row's block unpacked from its group first).
struct PlainRows {
  const uint8_t* w;
  int64_t ldw;
  int type;
  int per, bytes;  // a block's chunks of 32 and bytes
  void chunk(int64_t n, int64_t c, float* y) const {
    dequant32(type, w + n * ldw + (c / per) * bytes, int(c % per), y);
  }
};
struct X8Rows {
  const uint8_t* w;
  int64_t ldg;  // bytes of a group of 8 rows
  int type;
  void chunk(int64_t n, int64_t c, float* y) const {
    x8_dequant32(type, w + (n / kX8Rows) * ldg, int(n % kX8Rows), c, y);
  }
};

// The GEMM's weight panels (NR rows: 16 on AVX2, 32 on AVX-512; gemm.h's layout dst[k][j]) of rows [n0, n0 + nc),
// values [k0, k0 + kc) (multiples of 32), straight from the blocks, panel by panel so that the dequantised rows are in
// L1 when packed. On AVX2 a whole panel goes 8 rows' 32 values at a time into 1 KiB, transposed 8 x 8 in registers.
struct DequantScratch {
  std::vector<float> rows;
};
thread_local DequantScratch tl_dequant;

template <typename Rows>
gemm_impl::Panels dequant_panels(const Rows& src, float* dst, int64_t n0, int64_t k0, int64_t nc, int64_t kc) {
  constexpr int NR = gemm_impl::NR;
  std::vector<float>& tmp = tl_dequant.rows;
  tmp.resize(size_t(NR * kc));
  for (int64_t p = 0; p * NR < nc; ++p) {
    const int64_t r0 = n0 + p * NR, rows = std::min<int64_t>(NR, nc - p * NR);
    float* panel = dst + p * kc * NR;
#if defined(__AVX2__)
    static_assert(NR % 8 == 0, "a panel is whole groups of 8 rows");
    if constexpr (std::is_same_v<Rows, X8Rows>) {
      if (rows == NR) {  // whole groups of 8 rows, each value's 8 rows straight into the panel
        for (int64_t k = 0; k < kc; k += 32)
          for (int v = 0; v < NR / 8; ++v)
            x8_dequant8(src.type, src.w + (r0 / kX8Rows + v) * src.ldg, (k0 + k) / 32, panel + k * NR + 8 * v, NR);
        continue;
      }
    }
    if (rows == NR) {
      alignas(32) float y[8][32];
      for (int64_t k = 0; k < kc; k += 32)
        for (int v = 0; v < NR / 8; ++v) {
          for (int i = 0; i < 8; ++i) src.chunk(r0 + 8 * v + i, (k0 + k) / 32, y[i]);
          for (int o = 0; o < 4; ++o) {
            __m256 r[8];
            for (int i = 0; i < 8; ++i) r[i] = _mm256_load_ps(&y[i][8 * o]);
            gemm_impl::transpose8(r);
            for (int c = 0; c < 8; ++c) _mm256_storeu_ps(panel + (k + 8 * o + c) * NR + 8 * v, r[c]);
          }
        }
      continue;
    }
#endif
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < kc; k += 32) src.chunk(r0 + r, (k0 + k) / 32, tmp.data() + r * kc + k);
    gemm_impl::pack_w(panel, tmp.data(), kc, rows, kc);
  }
  return gemm_impl::Panels{dst, kc * NR};
}

template <typename TA>
void quant_linear_impl(const TensorView& out, const TensorView& x, const TensorView& weight, int type,
                       const MaybeTensor& bias) {
  QuantFormat f{};
  quant_format(type, &f);
  const PlainRows src{static_cast<const uint8_t*>(weight.data), weight.stride(0) * 4, type, f.block / 32, f.bytes};
  const int64_t k_len = x.size(1);
  gemm_impl::linear_frame<TA>(
      out, x, weight.size(0), bias, gemm_impl::kQuantGemvMaxTokens,
      [&](const float* xf, int64_t ldx, const float* b) { gemv<TA>(out, xf, ldx, weight, type, k_len, b); },
      [&](float* dst, int64_t n0, int64_t k0, int64_t nc, int64_t kc) {
        return dequant_panels(src, dst, n0, k0, nc, kc);
      });
}

template <typename TA>
void quant_linear_packed_impl(const TensorView& out, const TensorView& x, const TensorView& packed, int type,
                              const MaybeTensor& bias) {
  const X8Rows src{static_cast<const uint8_t*>(packed.data), packed.stride(0) * 4 * kX8Rows, type};
  const int64_t k_len = x.size(1);
  gemm_impl::linear_frame<TA>(
      out, x, packed.size(0), bias, gemm_impl::kQuantGemvMaxTokens,
      [&](const float* xf, int64_t ldx, const float* b) { gemv_x8<TA>(out, xf, ldx, packed, type, k_len, b); },
      [&](float* dst, int64_t n0, int64_t k0, int64_t nc, int64_t kc) {
        return dequant_panels(src, dst, n0, k0, nc, kc);
      });
}

// out[i] = row ids[i] of a quantised table (PlainRows or X8Rows), dequantised.
template <typename TA, typename Rows>
void quant_embedding_impl(const char* op, const TensorView& out, const TensorView& ids, int64_t rows, const Rows& src) {
  const int64_t n = ids.size(0), hidden = out.size(1);
  const int32_t* idx = ids.ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= rows)
      fail(ErrorKind::Range, op, ": ids[", i, "] = ", idx[i], " is outside [0, ", rows, ")");
  parallel_for(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, hidden)), [&](int64_t i0, int64_t i1) {
    std::vector<float> row(static_cast<size_t>(hidden));
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t c = 0; c < hidden / 32; ++c) src.chunk(idx[i], c, row.data() + 32 * c);
      TA* o = out.ptr<TA>() + i * out.stride(0);
      for (int64_t k = 0; k < hidden; ++k) o[k] = from_float<TA>(row[size_t(k)]);
    }
  });
}

}  // namespace

void quant_linear(const TensorView& out, const TensorView& x, const TensorView& weight, double type,
                  const MaybeTensor& bias) {
#ifdef MVLLM_QUANT_DOTS_BELOW
  if (x.size(0) <= gemm_impl::kQuantGemvMaxTokens)
    return MVLLM_CPU_LEVEL_BELOW::quant_linear(out, x, weight, type, bias);
#endif
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, TA, quant_linear_impl<TA>(out, x, weight, int(type), bias));
}

void pack_quant_weight(const TensorView& packed, const TensorView& weight, double type) {
  const int t = int(type);
  // a row's blocks: its bytes over the block's, the padding to whole words (at most 3 bytes) aside
  const int64_t ldw = weight.stride(0) * 4, ldg = packed.stride(0) * 4 * kX8Rows, nb = ldw / (x8_block_bytes(t) / 8);
  const uint8_t* w = static_cast<const uint8_t*>(weight.data);
  uint8_t* p = static_cast<uint8_t*>(packed.data);
  parallel_for(packed.size(0) / kX8Rows, std::max<int64_t>(1, (64 << 10) / std::max<int64_t>(1, ldg)),
               [&](int64_t g0, int64_t g1) {
                 for (int64_t g = g0; g < g1; ++g) x8_pack_group(t, w + g * kX8Rows * ldw, ldw, nb, p + g * ldg, ldg);
               });
}

void quant_linear_packed(const TensorView& out, const TensorView& x, const TensorView& packed, double type,
                         const MaybeTensor& bias) {
#ifdef MVLLM_QUANT_DOTS_BELOW
  if (x.size(0) <= gemm_impl::kQuantGemvMaxTokens)
    return MVLLM_CPU_LEVEL_BELOW::quant_linear_packed(out, x, packed, type, bias);
#endif
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, TA, quant_linear_packed_impl<TA>(out, x, packed, int(type), bias));
}

void quant_embedding(const TensorView& out, const TensorView& ids, const TensorView& table, double type) {
#ifdef MVLLM_QUANT_DOTS_BELOW
  MVLLM_CPU_LEVEL_BELOW::quant_embedding(out, ids, table, type);
#else
  QuantFormat f{};
  quant_format(int64_t(type), &f);
  const PlainRows src{static_cast<const uint8_t*>(table.data), table.stride(0) * 4, int(type), f.block / 32, f.bytes};
  MVLLM_CPU_DISPATCH_FLOAT(out.dtype, TA, quant_embedding_impl<TA>("quantEmbedding", out, ids, table.size(0), src));
#endif
}

void quant_embedding_packed(const TensorView& out, const TensorView& ids, const TensorView& table, double type) {
#ifdef MVLLM_QUANT_DOTS_BELOW
  MVLLM_CPU_LEVEL_BELOW::quant_embedding_packed(out, ids, table, type);
#else
  const X8Rows src{static_cast<const uint8_t*>(table.data), table.stride(0) * 4 * kX8Rows, int(type)};
  MVLLM_CPU_DISPATCH_FLOAT(out.dtype, TA,
                           quant_embedding_impl<TA>("quantEmbeddingPacked", out, ids, table.size(0), src));
#endif
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
