// Linear layers on the CPU: out = x · weightᵀ (+ bias), weight in Hugging Face layout [outFeatures, inFeatures].
//
// Up to 4 tokens (a decode step of a small batch): GEMV. The weight is streamed once, row by row, converted in
// registers, and each row is dotted with every token's x, so the time is the weight's read at memory bandwidth.
// Up to 64 tokens (a decode batch): panel by panel. 16 output features at a time, k-major (packLinearWeight's layout,
// read in place, or 16 rows transposed into an L2-sized panel), each panel row one vector (AVX-512) multiplied by up
// to 16 tokens' broadcast x, so the weight is read once.
// More tokens (prefill): GEMM in the GotoBLAS/BLIS shape. x and weight are cut into cache-sized blocks and packed into
// k-major panels (converted to fp32 there, a few hundred KiB per thread, never the whole weight); a register-tiled
// micro-kernel broadcasts x and multiplies whole vectors of output features.
#include <algorithm>
#include <vector>

#include "dispatch.h"
#include "dots.h"
#include "gemm.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

constexpr int N = Vec::N;

// ---- GEMV ----

// Weight rows per step: 4 x 4 tokens = 16 accumulators fits AVX-512's 32 registers; AVX2 has 16.
constexpr int kGemvRows = N >= 16 ? 4 : 2;

// sums[m * R + r] = x[m0 + m] · w[r] for up to 4 tokens (x rows ldx apart, fp32) and R weight rows (K apart).
// `ahead`: weight rows to prefetch meanwhile (or null).
template <int R, typename TW>
inline void gemv_rows(const float* x, int64_t ldx, int64_t tokens, const TW* w, int64_t k_len, float* sums, int64_t m0,
                      const TW* ahead = nullptr) {
  const float* xm = x + m0 * ldx;
  switch (std::min<int64_t>(4, tokens - m0)) {
    case 1: dots<1, R>(xm, ldx, w, k_len, k_len, sums, ahead); break;
    case 2: dots<2, R>(xm, ldx, w, k_len, k_len, sums, ahead); break;
    case 3: dots<3, R>(xm, ldx, w, k_len, k_len, sums, ahead); break;
    default: dots<4, R>(xm, ldx, w, k_len, k_len, sums, ahead); break;
  }
}

template <typename TA, typename TW>
void gemv(const TensorView& out, const float* x, int64_t ldx, const TensorView& weight, const float* bias) {
  const int64_t tokens = out.size(0), n_out = weight.size(0), k_len = weight.size(1);
  const TW* w = weight.ptr<TW>();
  TA* o = out.ptr<TA>();
  const int64_t ldo = out.stride(0);
  const int64_t groups = (n_out + kGemvRows - 1) / kGemvRows;
  // ~256 KiB of weight per task at least, so waking a thread pays off
  const int64_t grain = std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(1, kGemvRows * k_len * sizeof(TW)));
  parallel_for(groups, grain, [&](int64_t g0, int64_t g1) {
    float sums[4 * kGemvRows];
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n = g * kGemvRows, rows = std::min<int64_t>(kGemvRows, n_out - n);
      for (int64_t m0 = 0; m0 < tokens; m0 += 4) {
        const int64_t mt = std::min<int64_t>(4, tokens - m0);
        if (rows == kGemvRows) {
          // while the first pass over this group streams it, prefetch the next group of this task
          const TW* ahead = m0 == 0 && g + 1 < g1 && n + 2 * kGemvRows <= n_out ? w + (n + kGemvRows) * k_len : nullptr;
          gemv_rows<kGemvRows>(x, ldx, tokens, w + n * k_len, k_len, sums, m0, ahead);
        } else {
          for (int64_t r = 0; r < rows; ++r) {
            float one[4];
            gemv_rows<1>(x, ldx, tokens, w + (n + r) * k_len, k_len, one, m0);
            for (int64_t m = 0; m < mt; ++m) sums[m * kGemvRows + r] = one[m];
          }
        }
        for (int64_t m = 0; m < mt; ++m)
          for (int64_t r = 0; r < rows; ++r)
            o[(m0 + m) * ldo + n + r] = from_float<TA>(sums[m * kGemvRows + r] + (bias ? bias[n + r] : 0.f));
      }
    }
  });
}

// Tokens one pass over a panel serves: T x V accumulators, V weight vectors and a broadcast within the registers
// (AVX-512 32, AVX2 16, NEON 32).
constexpr int kPanelTokens = N >= 16 ? 16 : N >= 4 ? 6 : 4;
// Up to this many tokens the packed weight is read panel by panel, in place (a decode batch: each weight element is
// used a few times); past it the GEMM's cache blocks pay off.
constexpr int64_t kPanelMaxTokens = 64;

// out[m0 + m][n0 + j] for T tokens from m0 over one panel of 16 features w ([k_len][16]): each k row of the panel
// (one cache line in fp32) is multiplied by every token's x[k], so the panel streams once, in order. xk holds the T
// tokens' x k-major (xk[k * T + m], as pack_tokens writes it): rows of x a power of two apart would share one L1 set.
template <int T, typename TA, typename TW>
void panel_tokens(const TensorView& out, const float* xk, const TW* w, int64_t k_len, const float* bias, int64_t n0,
                  int64_t m0) {
  constexpr int V = 16 / N;  // vectors a panel row
  const int64_t ldo = out.stride(0);
  Vec acc[T][V];
  for (int m = 0; m < T; ++m)
    for (int v = 0; v < V; ++v) acc[m][v] = vset1(0.f);
  for (int64_t k = 0; k < k_len; ++k) {
    Vec wv[V];
    for (int v = 0; v < V; ++v) wv[v] = vload_stream(w + k * 16 + v * N);
    for (int m = 0; m < T; ++m) {
      const Vec xv = vset1(xk[k * T + m]);
      for (int v = 0; v < V; ++v) acc[m][v] = vfma(xv, wv[v], acc[m][v]);
    }
  }
  alignas(64) float row[16];
  const int64_t nc = std::min<int64_t>(16, out.size(1) - n0);
  for (int m = 0; m < T; ++m) {
    for (int v = 0; v < V; ++v) vstore(row + v * N, acc[m][v]);
    TA* o = out.ptr<TA>() + (m0 + m) * ldo + n0;
    for (int64_t j = 0; j < nc; ++j) o[j] = from_float<TA>(row[j] + (bias ? bias[n0 + j] : 0.f));
  }
}

// panel_tokens over `count` tokens, count <= kPanelTokens.
template <typename TA, typename TW, int T = 1>
void panel_tokens_n(int count, const TensorView& out, const float* xk, const TW* w, int64_t k_len, const float* bias,
                    int64_t n0, int64_t m0) {
  if constexpr (T < kPanelTokens) {
    if (count != T) return panel_tokens_n<TA, TW, T + 1>(count, out, xk, w, k_len, bias, n0, m0);
  }
  panel_tokens<T, TA>(out, xk, w, k_len, bias, n0, m0);
}

// x (tokens x k_len, rows ldx apart) -> groups of kPanelTokens tokens, each k-major: group m0's token m at
// dst[m0 * k_len + k * count + m], count the group's size.
inline void pack_tokens(float* dst, const float* x, int64_t ldx, int64_t tokens, int64_t k_len) {
  for (int64_t m0 = 0; m0 < tokens; m0 += kPanelTokens) {
    const int64_t count = std::min<int64_t>(kPanelTokens, tokens - m0);
    float* d = dst + m0 * k_len;
    for (int64_t m = 0; m < count; ++m)
      for (int64_t k = 0; k < k_len; ++k) d[k * count + m] = x[(m0 + m) * ldx + k];
  }
}

struct PanelScratch {
  std::vector<float> tokens, panel;  // pack_tokens' output (the caller's thread); a transposed panel (each thread)
};
inline thread_local PanelScratch tl_panels;

// A decode batch (up to kPanelMaxTokens tokens, x fp32) panel by panel: `panel(p, scratch)` gives panel p's [k_len][16]
// weights (found in place, or transposed into scratch, k_len * 16 floats), and each of its passes (kPanelTokens tokens
// each) runs back to back, so that the later ones find it in cache.
template <typename TA, typename GetPanel>
void panel_batch(const TensorView& out, const float* xf, int64_t ldx, int64_t k_len, size_t weight_item,
                 const float* bias, const GetPanel& panel) {
  const int64_t tokens = out.size(0), panels = (out.size(1) + 15) / 16;
  // ~256 KiB of weight per task at least, so waking a thread pays off
  const int64_t grain = std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(1, 16 * k_len * int64_t(weight_item)));
  tl_panels.tokens.resize(size_t(tokens * k_len));
  const float* xk = tl_panels.tokens.data();
  pack_tokens(tl_panels.tokens.data(), xf, ldx, tokens, k_len);
  parallel_for(panels, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const auto* w = panel(p, tl_panels.panel);
      for (int64_t m0 = 0; m0 < tokens; m0 += kPanelTokens)
        panel_tokens_n<TA>(int(std::min<int64_t>(kPanelTokens, tokens - m0)), out, xk + m0 * k_len, w, k_len, bias,
                           p * 16, m0);
    }
  });
}

// The packed weight: up to kPanelMaxTokens tokens panel by panel in place; more the GEMM reading the panels in place.
template <typename TA, typename TW>
void linear_packed_impl(const TensorView& out, const TensorView& x, const TensorView& packed, const TensorView& bias) {
  const int64_t k_len = x.size(1);
  const TW* wp = packed.ptr<TW>();
  gemm_impl::linear_frame<TA>(
      out, x, out.size(1), bias, kPanelMaxTokens,
      [&](const float* xf, int64_t ldx, const float* b) {
        panel_batch<TA>(out, xf, ldx, k_len, sizeof(TW), b,
                        [&](int64_t p, std::vector<float>&) { return wp + p * k_len * 16; });
      },
      [&](float* dst, int64_t n0, int64_t k0, int64_t nc, int64_t kc) {
        return gemm_impl::packed_panels(dst, wp, k_len, n0, k0, nc, kc);
      });
}

template <typename TA, typename TW>
void linear_impl(const TensorView& out, const TensorView& x, const TensorView& weight, const TensorView& bias) {
  const int64_t k_len = weight.size(1);
  const TW* wp = weight.ptr<TW>();
  const int64_t n_out = weight.size(0);
  gemm_impl::linear_frame<TA>(
      out, x, n_out, bias, kPanelMaxTokens,
      [&](const float* xf, int64_t ldx, const float* b) {
        if (x.size(0) <= gemm_impl::kFloatGemvMaxTokens) return gemv<TA, TW>(out, xf, ldx, weight, b);
        // a decode batch: 16 rows at a time transposed into a panel (L2), which every token pass then reads
        panel_batch<TA>(out, xf, ldx, k_len, sizeof(TW), b, [&](int64_t p, std::vector<float>& scratch) {
          scratch.resize(size_t(k_len * 16));
          gemm_impl::pack_w<16>(scratch.data(), wp + p * 16 * k_len, k_len, std::min<int64_t>(16, n_out - p * 16),
                                k_len);
          return static_cast<const float*>(scratch.data());
        });
      },
      [&](float* dst, int64_t n0, int64_t k0, int64_t nc, int64_t kc) {
        gemm_impl::pack_w(dst, wp + n0 * k_len + k0, k_len, nc, kc);
        return gemm_impl::Panels{dst, kc * gemm_impl::NR};
      });
}

template <typename T>
void pack_linear_weight_impl(const TensorView& packed, const TensorView& weight) {
  const int64_t n_out = weight.size(0), k_len = weight.size(1);
  const T* w = weight.ptr<T>();
  T* d = packed.ptr<T>();
  parallel_for(packed.size(0), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t k = 0; k < k_len; ++k)
        for (int64_t j = 0; j < 16; ++j) {
          const int64_t n = p * 16 + j;
          d[(p * k_len + k) * 16 + j] = n < n_out ? w[n * k_len + k] : from_float<T>(0.f);
        }
  });
}

}  // namespace

void pack_linear_weight(const TensorView& packed, const TensorView& weight) {
  MVLLM_CPU_DISPATCH_FLOAT(weight.dtype, T, pack_linear_weight_impl<T>(packed, weight));
}

void linear_packed(const TensorView& out, const TensorView& x, const TensorView& packed, const MaybeTensor& bias) {
  MVLLM_CPU_DISPATCH_FLOAT(
      x.dtype, TA, MVLLM_CPU_DISPATCH_FLOAT(packed.dtype, TW, linear_packed_impl<TA, TW>(out, x, packed, bias)));
}

void linear(const TensorView& out, const TensorView& x, const TensorView& weight, const MaybeTensor& bias) {
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, TA,
                           MVLLM_CPU_DISPATCH_FLOAT(weight.dtype, TW, linear_impl<TA, TW>(out, x, weight, bias)));
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
