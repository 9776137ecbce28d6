// The register tiles of the CPU paged attention (attention.cc): scores q·k (many keys a pass, or the keys of a
// transposed tile along the lanes), Σ p·v, the softmax's exponentials, and the prefetches of the next block's rows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "dots.h"
#include "level.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace attn {

// acc_r = acc_r * corr_r + Σ_{t < nk} p_r[t] · v_t for R rows over V vectors of headSize (p rows pld apart,
// v rows vld apart, acc rows ald apart): R x V independent chains, each v vector loaded once for all R rows.
template <int R, int V, typename TV>
inline void pv_tile(float* acc, int64_t ald, const float* p, int64_t pld, const float* corr, const TV* v, int64_t vld,
                    int64_t nk) {
  constexpr int N = Vec::N;
  Vec a[R][V];
  for (int r = 0; r < R; ++r)
    for (int x = 0; x < V; ++x) a[r][x] = vload(acc + r * ald + x * N) * vset1(corr[r]);
  for (int64_t t = 0; t < nk; ++t) {
    Vec vv[V];
    for (int x = 0; x < V; ++x) vv[x] = vload(v + t * vld + x * N);
    for (int r = 0; r < R; ++r) {
      const Vec pr = vset1(p[r * pld + t]);
      for (int x = 0; x < V; ++x) a[r][x] = vfma(pr, vv[x], a[r][x]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int x = 0; x < V; ++x) vstore(acc + r * ald + x * N, a[r][x]);
}

// p[t] = e^(p[t] - shift) for t < n, vectorised; returns their sum.
inline float exp_shift_sum(float* p, int64_t n, float shift) {
  constexpr int N = Vec::N;
  const Vec vs = vset1(shift);
  Vec acc = vset1(0.f);
  int64_t t = 0;
  for (; t + N <= n; t += N) {
    const Vec e = vexp(vload(p + t) - vs);
    vstore(p + t, e);
    acc = acc + e;
  }
  float sum = vsum(acc);
  for (; t < n; ++t) {
    p[t] = std::exp(p[t] - shift);
    sum += p[t];
  }
  return sum;
}

template <typename T>
inline void load_row(float* dst, const T* src, int64_t n) {
  constexpr int N = Vec::N;
  int64_t i = 0;
  for (; i + N <= n; i += N) vstore(dst + i, vload(src + i));
  for (; i < n; ++i) dst[i] = to_float(src[i]);
}

// The rows of one KV block's bs keys, a slot apart, prefetched (the next block's, while this one is used: short runs
// a slot apart in another block, which the hardware prefetchers do not foresee).
template <typename T>
inline void prefetch_rows(const T* rows, int64_t n, int64_t slot, int64_t d) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t b = 0; b < d * int64_t(sizeof(T)); b += 64)
      __builtin_prefetch(reinterpret_cast<const char*>(rows + t * slot) + b, 0, 3);
}

// acc[r] = acc[r] * corr[r] + Σ_{t < nk} p[r][t] · v_t for the group's rows (corr null: 1; p rows pld apart, v rows
// vld apart, any storage type), in register tiles of 2 rows x 4 vectors; meanwhile the next_n rows at `next` (vld
// apart) are prefetched, a few between each two tiles.
template <typename TV>
void pv_rows(float* acc, const float* p, int64_t pld, const float* corr, const TV* v, int64_t vld, int64_t nk,
             int64_t group, int64_t d, const TV* next, int64_t next_n) {
  constexpr int N = Vec::N;
  const float one[2] = {1.f, 1.f};
  int64_t fetched = 0;
  auto fetch = [&](int64_t rows) {
    for (; rows > 0 && fetched < next_n; --rows, ++fetched) prefetch_rows(next + fetched * vld, 1, vld, d);
  };
  const int64_t tiles = ((group + 1) / 2) * std::max<int64_t>(1, d / (4 * N));
  const int64_t per_tile = (next_n + tiles - 1) / tiles;
  for (int64_t g = 0; g < group; g += 2) {
    const bool two = g + 1 < group;
    float* a = acc + g * d;
    const float* pg = p + g * pld;
    const float* cg = corr ? corr + g : one;
    int64_t c = 0;
    for (; c + 4 * N <= d; c += 4 * N) {
      fetch(per_tile);
      if (two)
        pv_tile<2, 4>(a + c, d, pg, pld, cg, v + c, vld, nk);
      else
        pv_tile<1, 4>(a + c, d, pg, pld, cg, v + c, vld, nk);
    }
    for (; c + N <= d; c += N) {
      if (two)
        pv_tile<2, 1>(a + c, d, pg, pld, cg, v + c, vld, nk);
      else
        pv_tile<1, 1>(a + c, d, pg, pld, cg, v + c, vld, nk);
    }
    for (int64_t rr = 0; rr < (two ? 2 : 1); ++rr)
      for (int64_t i = c; i < d; ++i) {
        float x = a[rr * d + i] * cg[rr];
        for (int64_t t = 0; t < nk; ++t) x += pg[rr * pld + t] * to_float(v[t * vld + i]);
        a[rr * d + i] = x;
      }
  }
  fetch(next_n);
}

// p[r][t] = q_r · k_t for the group's rows (q rows d apart, fp32) and nk keys (ldk apart, any storage type), 4 rows
// x 2 keys at a time (1 x 8 or 2 x 4 for small groups); p rows pld apart. Meanwhile the next_n key rows at `next` (ldk
// apart) are prefetched.
template <typename TK>
void group_scores(float* p, int64_t pld, const float* q, const TK* k, int64_t ldk, int64_t nk, int64_t group, int64_t d,
                  const TK* next, int64_t next_n) {
  for (int64_t g = 0; g < group; g += 4) {
    const int64_t rn = std::min<int64_t>(4, group - g);
    const float* qg = q + g * d;
    float tmp[8];
    for (int64_t t = 0; t < nk;) {
      // 8 accumulators where the rows allow (one row x 8 keys, two x 4: one reduction tree for all eight), else pairs
      const int kn = rn == 1 && t + 8 <= nk ? 8 : rn == 2 && t + 4 <= nk ? 4 : t + 1 < nk ? 2 : 1;
      const TK* kt = k + t * ldk;
      if (g == 0 && t < next_n) prefetch_rows(next + t * ldk, std::min<int64_t>(kn, next_n - t), ldk, d);
      switch (rn * 16 + kn) {
        case 4 * 16 + 2: dots<4, 2>(qg, d, kt, ldk, d, tmp); break;
        case 4 * 16 + 1: dots<4, 1>(qg, d, kt, ldk, d, tmp); break;
        case 3 * 16 + 2: dots<3, 2>(qg, d, kt, ldk, d, tmp); break;
        case 3 * 16 + 1: dots<3, 1>(qg, d, kt, ldk, d, tmp); break;
        case 2 * 16 + 4: dots<2, 4>(qg, d, kt, ldk, d, tmp); break;
        case 2 * 16 + 2: dots<2, 2>(qg, d, kt, ldk, d, tmp); break;
        case 2 * 16 + 1: dots<2, 1>(qg, d, kt, ldk, d, tmp); break;
        case 1 * 16 + 8: dots<1, 8>(qg, d, kt, ldk, d, tmp); break;
        case 1 * 16 + 2: dots<1, 2>(qg, d, kt, ldk, d, tmp); break;
        default: dots<1, 1>(qg, d, kt, ldk, d, tmp); break;
      }
      for (int64_t i = 0; i < rn; ++i)
        for (int j = 0; j < kn; ++j) p[(g + i) * pld + t + j] = tmp[i * kn + j];
      t += kn;
    }
  }
}

// p[r][c * N ..] = q_r · k_(c * N + lane) for R rows (q rows d apart) and C vectors of keys from the transposed tile
// kt ([d][kpad]): q broadcast, the keys along the lanes, so no horizontal sums; R x C independent chains.
template <int R, int C>
inline void score_tile(float* p, int64_t pld, const float* q, int64_t d, const float* kt, int64_t kpad) {
  constexpr int N = Vec::N;
  Vec acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = vset1(0.f);
  for (int64_t i = 0; i < d; ++i) {
    Vec kv[C];
    for (int c = 0; c < C; ++c) kv[c] = vload(kt + i * kpad + c * N);
    for (int r = 0; r < R; ++r) {
      const Vec qv = vset1(q[r * d + i]);
      for (int c = 0; c < C; ++c) acc[r][c] = vfma(qv, kv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) vstore(p + r * pld + c * N, acc[r][c]);
}

// The scores of `rows` rows (q rows d apart) against the whole tile, into p (rows kpad apart): 8 accumulators a tile,
// 4 rows x 2 key vectors or 8 rows x 1.
inline void block_scores(float* p, const float* q, int64_t rows, int64_t d, const float* kt, int64_t kpad) {
  constexpr int N = Vec::N;
  int64_t c = 0;
  for (; c + 2 * N <= kpad; c += 2 * N) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) score_tile<4, 2>(p + r * kpad + c, kpad, q + r * d, d, kt + c, kpad);
    for (; r < rows; ++r) score_tile<1, 2>(p + r * kpad + c, kpad, q + r * d, d, kt + c, kpad);
  }
  for (; c < kpad; c += N) {
    int64_t r = 0;
    for (; r + 8 <= rows; r += 8) score_tile<8, 1>(p + r * kpad + c, kpad, q + r * d, d, kt + c, kpad);
    for (; r < rows; ++r) score_tile<1, 1>(p + r * kpad + c, kpad, q + r * d, d, kt + c, kpad);
  }
}

}  // namespace attn
}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
