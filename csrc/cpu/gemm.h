// The CPU GEMM in the GotoBLAS/BLIS shape, shared by the float linear (linear.cc) and the quantised one (quant.cc):
// x and the weight are cut into cache-sized blocks and packed into k-major fp32 panels (the weight converted or
// dequantised there, a few hundred KiB per thread, never the whole weight); a register-tiled micro-kernel broadcasts
// x and multiplies whole vectors of output features.
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../core/tensor.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace gemm_impl {

constexpr int N = Vec::N;

// ---- GEMM ----

// Micro-tile: MR tokens x NR output features (NV vectors), MR * NV accumulators in registers.
#if defined(__AVX512F__)
constexpr int MR = 12, NV = 2;
#elif defined(__AVX2__)
constexpr int MR = 6, NV = 2;
#elif defined(MVLLM_NEON)
constexpr int MR = 6, NV = 4;  // 24 accumulators of NEON's 32 registers; NR 16, the packing's panel width
#else
constexpr int MR = 4, NV = 4;
#endif
constexpr int NR = NV * N;
constexpr int64_t KC = 256;      // k-block: an NR x KC weight panel (32 KiB on AVX-512) stays in L1
constexpr int64_t MC = MR * 24;  // token block: the packed MC x KC x panel (288 KiB) stays in L2
constexpr int64_t NC = NR * 4;   // output features per task
constexpr int64_t kSkinnyTokens = 64, kSkinnyKC = 1024;  // a decode batch's blocks (see gemm())

// c[i][:] (+)= a-panel[:, i] · b-panel over kc, i < mr, first nr columns; c rows ldc apart.
// first: c = acc + bias (bias may be null) instead of c += acc.
inline void micro_kernel(const float* a, const float* b, int64_t kc, float* c, int64_t ldc, int mr, int nr, bool first,
                         const float* bias) {
  Vec acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = vset1(0.f);
  for (int64_t k = 0; k < kc; ++k) {
    Vec bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = vload(b + k * NR + v * N);
    for (int i = 0; i < MR; ++i) {
      const Vec av = vset1(a[k * MR + i]);
      for (int v = 0; v < NV; ++v) acc[i][v] = vfma(av, bv[v], acc[i][v]);
    }
  }
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        float* cp = c + i * ldc + v * N;
        const Vec base = first ? (bias ? vload(bias + v * N) : vset1(0.f)) : vload(cp);
        vstore(cp, base + acc[i][v]);
      }
    return;
  }
  alignas(64) float tile[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) vstore(&tile[i][v * N], acc[i][v]);
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float* cp = c + i * ldc + j;
      *cp = (first ? (bias ? bias[j] : 0.f) : *cp) + tile[i][j];
    }
}

// x[m0:m0+mc, k0:k0+kc] -> panels of MR tokens, k-major: dst[p][k][i]; rows past mc are zero.
template <typename TA>
void pack_x(float* dst, const TA* x, int64_t ldx, int64_t mc, int64_t kc) {
  for (int64_t p = 0; p * MR < mc; ++p) {
    float* d = dst + p * kc * MR;
    for (int i = 0; i < MR; ++i) {
      const int64_t m = p * MR + i;
      if (m < mc) {
        const TA* row = x + m * ldx;
        for (int64_t k = 0; k < kc; ++k) d[k * MR + i] = to_float(row[k]);
      } else {
        for (int64_t k = 0; k < kc; ++k) d[k * MR + i] = 0.f;
      }
    }
  }
}

// weight[n0:n0+nc, k0:k0+kc] -> panels of NR features, k-major: dst[p][k][j]; features past nc are zero.
// A transpose: AVX-512 loads 16 k of 16 rows (AVX2: 8 of 8, neon: 4 of 4), converted in registers, and transposes them
// there.
#if defined(__AVX512F__)
// r[i] = row i (16 values) -> r[c] = column c (the 16 rows' value c)
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // per 128-bit lane L: u[4i + j] holds rows 4i..4i+3 at column 4L + j
  __m512 u[16];
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  // 4 x 4 transpose of 128-bit lanes across u[j], u[4+j], u[8+j], u[12+j]
  for (int j = 0; j < 4; ++j) {
    const __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xee);
    const __m512 c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44),
                 d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xee);
    r[j] = _mm512_shuffle_f32x4(a, c, 0x88);
    r[4 + j] = _mm512_shuffle_f32x4(a, c, 0xdd);
    r[8 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(b, d, 0xdd);
  }
}
#endif
#if defined(__AVX2__)
// r[i] = row i (8 values) -> r[c] = column c (the 8 rows' value c). (AVX-512 builds use it too: quant.cc's panels.)
inline void transpose8(__m256 (&r)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
    u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}
#endif

// PW: the panels' width, NR for the micro-kernel, 16 for linear.cc's decode batches (a multiple of 16).
template <int PW = NR, typename TW>
void pack_w(float* dst, const TW* w, int64_t ldw, int64_t nc, int64_t kc) {
  for (int64_t p = 0; p * PW < nc; ++p) {
    float* d = dst + p * kc * PW;
    const TW* base = w + p * PW * ldw;
    int64_t k = 0;
    if ((p + 1) * PW <= nc) {  // whole panels take the vector path
#if defined(__AVX512F__)
      for (; k + 16 <= kc; k += 16)
        for (int v = 0; v < PW / 16; ++v) {
          __m512 r[16];
          // as on AVX2 (below): the next k-block into L2. Without it a 128 x 4096 -> 4096 float32 GEMM ran at 0.95x
          // avx2's speed, waiting on the strided rows (bench/results/2026-12-07-cpu-round9/README.md)
          if ((k * sizeof(TW)) % 64 == 0)
            for (int i = 0; i < 16; ++i) __builtin_prefetch(base + (v * 16 + i) * ldw + k + kc, 0, 1);
          for (int i = 0; i < 16; ++i) r[i] = vload(base + (v * 16 + i) * ldw + k).v;
          transpose16(r);
          for (int c = 0; c < 16; ++c) _mm512_storeu_ps(d + (k + c) * PW + v * 16, r[c]);
        }
#elif defined(__AVX2__)
      for (; k + 8 <= kc; k += 8)
        for (int v = 0; v < PW / 8; ++v) {
          __m256 r[8];
          // the same rows' next k-block, into L2, so that it streams in while this one is multiplied
          if ((k * sizeof(TW)) % 64 == 0)
            for (int i = 0; i < 8; ++i) __builtin_prefetch(base + (v * 8 + i) * ldw + k + kc, 0, 1);
          for (int i = 0; i < 8; ++i) r[i] = vload(base + (v * 8 + i) * ldw + k).v;
          transpose8(r);
          for (int c = 0; c < 8; ++c) _mm256_storeu_ps(d + (k + c) * PW + v * 8, r[c]);
        }
#elif defined(MVLLM_NEON)
      for (; k + 4 <= kc; k += 4)
        for (int v = 0; v < PW / 4; ++v) {
          float32x4_t r[4];
          for (int i = 0; i < 4; ++i) r[i] = vload(base + (v * 4 + i) * ldw + k).v;
          // 4 x 4 transpose: pairs of rows interleaved, then 64-bit halves
          const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r[0], r[1])),
                            t1 = vreinterpretq_f64_f32(vtrn2q_f32(r[0], r[1])),
                            t2 = vreinterpretq_f64_f32(vtrn1q_f32(r[2], r[3])),
                            t3 = vreinterpretq_f64_f32(vtrn2q_f32(r[2], r[3]));
          const float64x2_t c[4] = {vtrn1q_f64(t0, t2), vtrn1q_f64(t1, t3), vtrn2q_f64(t0, t2), vtrn2q_f64(t1, t3)};
          for (int j = 0; j < 4; ++j) vst1q_f32(d + (k + j) * PW + v * 4, vreinterpretq_f32_f64(c[j]));
        }
#endif
    }
    // what the vector path did not cover: a partial panel, a k tail, or a build without it
    for (int j = 0; j < PW; ++j) {
      const int64_t n = p * PW + j;
      for (int64_t kk = k; kk < kc; ++kk) d[kk * PW + j] = n < nc ? to_float(base[j * ldw + kk]) : 0.f;
    }
  }
}

// Where a block's weight panels are for the micro-kernel: in pack_weight's scratch (panels kc * NR apart), or in a
// packed weight itself (panels k_len * NR apart).
struct Panels {
  const float* b;
  int64_t stride;
};

// Panels of NR features from a packed weight (packLinearWeight's [numPanels][k_len][16]): contiguous runs copied
// (converted to fp32), no transpose; features past nc come out as the packing's zero rows, or zeros.
template <typename TW>
void copy_packed(float* dst, const TW* packed, int64_t k_len, int64_t n0, int64_t k0, int64_t nc, int64_t kc) {
  constexpr int64_t P = 16;
  for (int64_t p = 0; p * NR < nc; ++p) {
    float* d = dst + p * kc * NR;
    if constexpr (NR == P) {
      const TW* src = packed + ((n0 / P + p) * k_len + k0) * P;
      for (int64_t i = 0; i < kc * P; i += N) vstore(d + i, vload(src + i));
    } else if constexpr (NR % P == 0) {  // AVX-512 (NR 32): packed panels side by side, each k row two runs of 16
      // (n0 is a multiple of NR: gemm() splits the features in whole panels)
      for (int64_t h = 0; h < NR / P; ++h) {
        const int64_t f0 = p * NR + h * P;  // this run's first feature, from n0
        if (f0 >= nc) {                     // past the weight: zeros, as the packing's padding
          for (int64_t k = 0; k < kc; ++k)
            for (int64_t j = 0; j < P; j += N) vstore(d + k * NR + h * P + j, vset1(0.f));
          continue;
        }
        const TW* src = packed + ((n0 + f0) / P * k_len + k0) * P;
        for (int64_t k = 0; k < kc; ++k)
          for (int64_t j = 0; j < P; j += N) vstore(d + k * NR + h * P + j, vload(src + k * P + j));
      }
    } else {  // scalar (NR 4) builds
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = 0; j < NR; ++j) {
          const int64_t f = n0 + p * NR + j;
          d[k * NR + j] = f < n0 + nc ? to_float(packed[((f / P) * k_len + k0 + k) * P + f % P]) : 0.f;
        }
    }
  }
}

// A packed weight's panels for the block at (n0, k0): a decode batch's one fp32 panel read in place where NR is the
// packing's 16 (AVX2); otherwise copied into dst, converted (prefill's several panels, read in place, ran at 47% of
// the FMA peak against 75% from the copy: bench/results/2026-11-30-cpu-throughput/ops-after.md).
template <typename TW>
Panels packed_panels(float* dst, const TW* packed, int64_t k_len, int64_t n0, int64_t k0, int64_t nc, int64_t kc) {
  constexpr int64_t P = 16;
  if constexpr (std::is_same_v<TW, float> && NR == P)
    if (nc <= P) return {packed + ((n0 / P) * k_len + k0) * P, k_len * P};
  copy_packed(dst, packed, k_len, n0, k0, nc, kc);
  return {dst, kc * NR};
}

struct GemmScratch {
  std::vector<float> x, b, c;  // packed x of a token block (caller's thread), packed weight block, fp32 tile
  std::vector<float> xf;       // linear_frame's fp32 copy of 16-bit x (caller's thread)
};
inline thread_local GemmScratch tl_gemm;

// out = x · Wᵀ (+ bias) for a weight of n_out x k_len whose panels `pack_weight(dst, n0, k0, nc, kc)` gives block by
// block (Panels): packed into dst as pack_w does (the caller's weight type, converted or dequantised there), or found
// in place.
template <typename TA, typename PackW>
void gemm(const TensorView& out, const TensorView& x, int64_t n_out, int64_t k_len, const PackW& pack_weight,
          const float* bias) {
  const int64_t tokens = x.size(0);
  // A decode batch (few tokens, each weight element used a few times) is bound by the weight's stream: one panel of
  // NR features over up to kSkinnyKC of k per task reads one contiguous run of rows, which the prefetchers follow
  // (16 tokens: 27-34% -> 36-44% of the roofline). Prefill keeps the cache-sized blocks.
  const bool skinny = tokens <= kSkinnyTokens;
  const int64_t kcb = skinny ? std::min(k_len, kSkinnyKC) : KC, ncb = skinny ? NR : NC;
  const int64_t k_blocks = (k_len + kcb - 1) / kcb, n_tasks = (n_out + ncb - 1) / ncb;
  const int64_t panel = ((MC + MR - 1) / MR) * MR * kcb;  // one packed x block
  const TA* xp = x.ptr<TA>();
  const int64_t ldx = x.stride(0), ldo = out.stride(0);
  // The caller's thread keeps the packed x of one token block (all k-blocks), shared by every task.
  GemmScratch& caller = tl_gemm;
  caller.x.resize(size_t(k_blocks * panel));
  float* xpack = caller.x.data();
  for (int64_t m0 = 0; m0 < tokens; m0 += MC) {
    const int64_t mc = std::min(MC, tokens - m0);
    parallel_for(k_blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t kb = b0; kb < b1; ++kb)
        pack_x(xpack + kb * panel, xp + m0 * ldx + kb * kcb, ldx, mc, std::min(kcb, k_len - kb * kcb));
    });
    // one task per NC output features: fine-grained, so the threads finish together
    const auto run_task = [&](int64_t task) {
      const int64_t n0 = task * ncb, nc = std::min(ncb, n_out - n0);
      GemmScratch& s = tl_gemm;
      s.b.resize(size_t(((ncb + NR - 1) / NR) * NR * kcb));
      // fp32 outputs accumulate in place; 16-bit ones in an fp32 tile, rounded once at the end
      constexpr bool direct = std::is_same_v<TA, float>;
      float* c;
      int64_t ldc;
      if constexpr (direct) {
        c = reinterpret_cast<float*>(out.ptr<TA>()) + m0 * ldo + n0;
        ldc = ldo;
      } else {
        s.c.resize(size_t(MC * NC));
        c = s.c.data();
        ldc = NC;
      }
      for (int64_t kb = 0; kb < k_blocks; ++kb) {
        const int64_t k0 = kb * kcb, kc = std::min(kcb, k_len - k0);
        const Panels w = pack_weight(s.b.data(), n0, k0, nc, kc);
        const float* a = xpack + kb * panel;
        for (int64_t ip = 0; ip * MR < mc; ++ip) {
          const int mr = int(std::min<int64_t>(MR, mc - ip * MR));
          for (int64_t jp = 0; jp * NR < nc; ++jp) {
            const int nr = int(std::min<int64_t>(NR, nc - jp * NR));
            micro_kernel(a + ip * kc * MR, w.b + jp * w.stride, kc, c + ip * MR * ldc + jp * NR, ldc, mr, nr, kb == 0,
                         bias ? bias + n0 + jp * NR : nullptr);
          }
        }
      }
      if constexpr (!direct) {
        for (int64_t i = 0; i < mc; ++i) {
          TA* orow = out.ptr<TA>() + (m0 + i) * ldo + n0;
          const float* crow = c + i * ldc;
          int64_t j = 0;
          for (; j + N <= nc; j += N) vstore(orow + j, vload(crow + j));
          for (; j < nc; ++j) orow[j] = from_float<TA>(crow[j]);
        }
      }
    };
    // a decode batch's tasks in contiguous ranges, so that each thread streams one run of panels; prefill's in a
    // shared queue, so that the threads finish together
    if (skinny)
      parallel_for(n_tasks, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) run_task(t);
      });
    else
      parallel_tasks(n_tasks, run_task);
  }
}

// Up to this many tokens the GEMV path wins (measured in lib/bench/ops.bench.ts): float weights switch to linear.cc's
// panel batch past 4 tokens (its panels and broadcast x beat the dot products' loads), quantised ones to the GEMM past
// 16 (their integer dots stay cheaper than dequantising panels).
constexpr int64_t kFloatGemvMaxTokens = 4, kQuantGemvMaxTokens = 16;

// What every linear layer does around its kernels: the bias in fp32, the empty sum (inFeatures 0: out = bias or 0),
// and the choice of kernel: up to gemv_max_tokens tokens `gemv(x, ldx, bias)` with x in fp32 (converted once where
// it is 16-bit), above that the GEMM with `pack` as its weight packer. bias has out's dtype, or data == null.
template <typename TA, typename Gemv, typename PackW>
void linear_frame(const TensorView& out, const TensorView& x, int64_t n_out, const TensorView& bias,
                  int64_t gemv_max_tokens, const Gemv& gemv, const PackW& pack) {
  const int64_t tokens = x.size(0), k_len = x.size(1);
  std::vector<float> bias_f;
  if (bias.data) {
    bias_f.resize(size_t(n_out));
    for (int64_t n = 0; n < n_out; ++n) bias_f[size_t(n)] = to_float(bias.ptr<TA>()[n]);
  }
  const float* b = bias.data ? bias_f.data() : nullptr;
  if (k_len == 0) {  // an empty sum: out = bias (or 0)
    for (int64_t m = 0; m < tokens; ++m)
      for (int64_t n = 0; n < n_out; ++n) out.ptr<TA>()[m * out.stride(0) + n] = from_float<TA>(b ? b[n] : 0.f);
    return;
  }
  if (tokens <= gemv_max_tokens) {
    // x is tiny next to the weight: convert it to fp32 once
    if constexpr (std::is_same_v<TA, float>) {
      gemv(x.ptr<float>(), x.stride(0), b);
    } else {
      // up to 64 tokens (linear.cc's panel batch): per-thread scratch, not an allocation a call
      std::vector<float>& xf = tl_gemm.xf;
      xf.resize(size_t(tokens * k_len));
      for (int64_t m = 0; m < tokens; ++m)
        for (int64_t k = 0; k < k_len; ++k) xf[size_t(m * k_len + k)] = to_float(x.ptr<TA>()[m * x.stride(0) + k]);
      gemv(xf.data(), k_len, b);
    }
    return;
  }
  gemm<TA>(out, x, n_out, k_len, pack, b);
}

}  // namespace gemm_impl
}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
