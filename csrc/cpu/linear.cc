// Linear layers on the CPU: out = x · weightᵀ (+ bias), weight in Hugging Face layout [outFeatures, inFeatures].
//
// Up to 4 tokens (a decode step of a small batch): GEMV. The weight is streamed once, row by row, converted in
// registers, and each row is dotted with every token's x, so the time is the weight's read at memory bandwidth.
// More tokens (larger decode batches, prefill): GEMM in the GotoBLAS/BLIS shape. x and weight are cut into cache-sized
// blocks and packed into k-major panels (converted to fp32 there, a few hundred KiB per thread, never the whole
// weight); a register-tiled micro-kernel broadcasts x and multiplies whole vectors of output features.
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

template <typename TA, typename TW>
void linear_impl(const TensorView& out, const TensorView& x, const TensorView& weight, const TensorView& bias) {
  const int64_t k_len = weight.size(1);
  const TW* wp = weight.ptr<TW>();
  gemm_impl::linear_frame<TA>(
      out, x, weight.size(0), bias, gemm_impl::kFloatGemvMaxTokens,
      [&](const float* xf, int64_t ldx, const float* b) { gemv<TA, TW>(out, xf, ldx, weight, b); },
      [&](float* dst, int64_t n0, int64_t k0, int64_t nc, int64_t kc) {
        gemm_impl::pack_w(dst, wp + n0 * k_len + k0, k_len, nc, kc);
        return gemm_impl::Panels{dst, kc * gemm_impl::NR};
      });
}

// out[m][16p + j] for T tokens (x fp32, rows ldx apart) over packed panels [p0, p1): each k row of a panel (16
// features, one cache line in fp32) is multiplied by every token's x[k], so the weight streams once, in order.
template <int T, typename TA, typename TW>
void gemv_packed_panels(const TensorView& out, const float* x, int64_t ldx, const TW* packed, int64_t k_len,
                        const float* bias, int64_t p0, int64_t p1) {
  constexpr int V = 16 / N;  // vectors a panel row
  const int64_t n_out = out.size(1), ldo = out.stride(0);
  for (int64_t p = p0; p < p1; ++p) {
    const TW* w = packed + p * k_len * 16;
    Vec acc[T][V];
    for (int m = 0; m < T; ++m)
      for (int v = 0; v < V; ++v) acc[m][v] = vset1(0.f);
    for (int64_t k = 0; k < k_len; ++k) {
      Vec wv[V];
      for (int v = 0; v < V; ++v) wv[v] = vload(w + k * 16 + v * N);
      for (int m = 0; m < T; ++m) {
        const Vec xv = vset1(x[m * ldx + k]);
        for (int v = 0; v < V; ++v) acc[m][v] = vfma(xv, wv[v], acc[m][v]);
      }
    }
    alignas(64) float row[16];
    const int64_t n0 = p * 16, nc = std::min<int64_t>(16, n_out - n0);
    for (int m = 0; m < T; ++m) {
      for (int v = 0; v < V; ++v) vstore(row + v * N, acc[m][v]);
      TA* o = out.ptr<TA>() + m * ldo + n0;
      for (int64_t j = 0; j < nc; ++j) o[j] = from_float<TA>(row[j] + (bias ? bias[n0 + j] : 0.f));
    }
  }
}

// The packed weight: up to 4 tokens the panel GEMV above, more the GEMM reading the panels in place.
template <typename TA, typename TW>
void linear_packed_impl(const TensorView& out, const TensorView& x, const TensorView& packed, const TensorView& bias) {
  const int64_t k_len = x.size(1), tokens = x.size(0);
  const TW* wp = packed.ptr<TW>();
  gemm_impl::linear_frame<TA>(
      out, x, out.size(1), bias, gemm_impl::kFloatGemvMaxTokens,
      [&](const float* xf, int64_t ldx, const float* b) {
        // ~256 KiB of weight per task at least, so waking a thread pays off
        const int64_t grain = std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(1, 16 * k_len * sizeof(TW)));
        parallel_for(packed.size(0), grain, [&](int64_t p0, int64_t p1) {
          switch (tokens) {
            case 1: return gemv_packed_panels<1, TA>(out, xf, ldx, wp, k_len, b, p0, p1);
            case 2: return gemv_packed_panels<2, TA>(out, xf, ldx, wp, k_len, b, p0, p1);
            case 3: return gemv_packed_panels<3, TA>(out, xf, ldx, wp, k_len, b, p0, p1);
            default: return gemv_packed_panels<4, TA>(out, xf, ldx, wp, k_len, b, p0, p1);
          }
        });
      },
      [&](float* dst, int64_t n0, int64_t k0, int64_t nc, int64_t kc) {
        return gemm_impl::packed_panels(dst, wp, k_len, n0, k0, nc, kc);
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
