// Many dot products at once: the kernel shared by GEMV (tokens x weight rows) and attention scores
// (query rows x keys).
#pragma once

#include <cstdint>

#include "level.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

// out[r * K + j] = a_r · b_j for R rows a_0.. (lda apart, fp32) and K rows b_0.. (ldb apart, any storage type,
// converted in registers), each n long. R x K independent accumulator chains hide the FMA latency, and each
// loaded vector is used K (or R) times. With `ahead` set, the same offsets of the K rows at `ahead` are prefetched
// as the loop goes (GEMV: the next group of weight rows, whose short rows the hardware prefetcher is slow to start on).
template <int R, int K, typename TB>
inline void dots(const float* a, int64_t lda, const TB* b, int64_t ldb, int64_t n, float* out,
                 const TB* ahead = nullptr) {
  constexpr int N = Vec::N;
  Vec acc[R][K];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < K; ++j) acc[r][j] = vset1(0.f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    if (ahead)
      for (int j = 0; j < K; ++j) __builtin_prefetch(ahead + j * ldb + i, 0, 3);
    Vec bv[K];
    for (int j = 0; j < K; ++j) bv[j] = vload(b + j * ldb + i);
    for (int r = 0; r < R; ++r) {
      const Vec av = vload(a + r * lda + i);
      for (int j = 0; j < K; ++j) acc[r][j] = vfma(av, bv[j], acc[r][j]);
    }
  }
  float sums[R * K];
  if constexpr (R * K == 8) {
    vsum8(&acc[0][0], sums);
  } else {
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < K; ++j) sums[r * K + j] = vsum(acc[r][j]);
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < K; ++j) {
      float s = sums[r * K + j];
      for (int64_t x = i; x < n; ++x) s += a[r * lda + x] * to_float(b[j * ldb + x]);
      out[r * K + j] = s;
    }
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
