// Rotary position embedding on the CPU, in place on query and key, one token per task, fp32 math.
#include "../core/error.h"
#include "dispatch.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

// Elements [i, embed) of rotate_head's pairs, one at a time, out of line. Within a function per head, at avx512, this
// loop's vector spills gave every call a stack frame to set up, and float32 at 7 tokens (280 calls) ran at 0.82x avx2's
// speed; inlined into the heads' loop, they slowed a float32 pass over 8192 tokens by ~15% at both levels
// (bench/results/2026-12-07-cpu-round9/README.md).
template <typename T, typename C, bool kNeox>
__attribute__((noinline)) void rotate_tail(T* h, const C* cos, const C* sin, int64_t i, int64_t embed) {
  for (; i < embed; ++i) {
    T* a = kNeox ? h + i : h + 2 * i;
    T* b = kNeox ? h + embed + i : h + 2 * i + 1;
    const float x = to_float(*a), y = to_float(*b), c = to_float(cos[i]), s = to_float(sin[i]);
    *a = from_float<T>(x * c - y * s);
    *b = from_float<T>(y * c + x * s);
  }
}

// Rotates the first rot_dim elements of one head. NeoX pairs element i with i + rot_dim/2;
// GPT-J pairs 2i with 2i+1. cos/sin hold rot_dim/2 values each.
template <typename T, typename C, bool kNeox>
inline __attribute__((always_inline)) void rotate_head(T* h, const C* cos, const C* sin, int64_t embed) {
  constexpr int N = Vec::N;
  int64_t i = 0;
  if constexpr (kNeox) {
    for (; i + N <= embed; i += N) {
      Vec x = vload(h + i), y = vload(h + embed + i), c = vload(cos + i), s = vload(sin + i);
      vstore(h + i, x * c - y * s);
      vstore(h + embed + i, y * c + x * s);
    }
  } else {
    for (; i + N <= embed; i += N) {
      Vec x, y, c = vload(cos + i), s = vload(sin + i);
      vdeinterleave(vload(h + 2 * i), vload(h + 2 * i + N), x, y);
      Vec a, b;
      vinterleave(x * c - y * s, y * c + x * s, a, b);
      vstore(h + 2 * i, a);
      vstore(h + 2 * i + N, b);
    }
  }
  if (i < embed) rotate_tail<T, C, kNeox>(h, cos, sin, i, embed);
}

// Each of `heads` heads, head_size apart from h0: one call per token's q or k. Inlined into rotary_impl's task
// instead, float32 at 7 tokens ran at ~0.9x avx2's speed at avx512.
template <typename T, typename C, bool kNeox>
__attribute__((noinline)) void rotate_heads(T* h0, int64_t heads, int64_t head_size, const C* cos, const C* sin,
                                            int64_t embed) {
  for (int64_t hd = 0; hd < heads; ++hd) rotate_head<T, C, kNeox>(h0 + hd * head_size, cos, sin, embed);
}

template <typename T, typename C, bool kNeox>
void rotary_impl(const TensorView& positions, const TensorView& query, const TensorView& key, int64_t head_size,
                 const TensorView& cache) {
  const int64_t tokens = query.size(0);
  const int64_t rot_dim = cache.size(1), embed = rot_dim / 2;
  const int64_t nq = query.size(1) / head_size, nk = key.data ? key.size(1) / head_size : 0;
  const int32_t* pos = positions.ptr<int32_t>();
  const int64_t work = (nq + nk) * rot_dim;
  parallel_for(tokens, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, work)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const C* cos = cache.ptr<C>() + int64_t(pos[t]) * rot_dim;
      const C* sin = cos + embed;
      T* q = query.ptr<T>() + t * query.stride(0);
      rotate_heads<T, C, kNeox>(q, nq, head_size, cos, sin, embed);
      if (key.data) rotate_heads<T, C, kNeox>(key.ptr<T>() + t * key.stride(0), nk, head_size, cos, sin, embed);
    }
  });
}

template <typename T, typename C>
void rotary_dispatch(const TensorView& positions, const TensorView& query, const TensorView& key, int64_t head_size,
                     const TensorView& cache, bool is_neox) {
  if (is_neox)
    rotary_impl<T, C, true>(positions, query, key, head_size, cache);
  else
    rotary_impl<T, C, false>(positions, query, key, head_size, cache);
}

}  // namespace

void rotary_embedding(const TensorView& positions, const TensorView& query, const MaybeTensor& key, double head_size_d,
                      const TensorView& cos_sin_cache, bool is_neox) {
  const int64_t head_size = int64_t(head_size_d);
  // Positions index the cache: check them all before touching query or key, so a bad call changes nothing.
  const int32_t* pos = positions.ptr<int32_t>();
  const int64_t max_pos = cos_sin_cache.size(0);
  for (int64_t t = 0; t < positions.size(0); ++t)
    if (pos[t] < 0 || pos[t] >= max_pos)
      fail(ErrorKind::Range, "rotaryEmbedding: positions[", t, "] = ", pos[t], " is outside [0, ", max_pos,
           ") (cosSinCache rows)");
  const bool same = cos_sin_cache.dtype == query.dtype;
  MVLLM_CPU_DISPATCH_FLOAT(query.dtype, T, {
    if (same)
      rotary_dispatch<T, T>(positions, query, key, head_size, cos_sin_cache, is_neox);
    else
      rotary_dispatch<T, float>(positions, query, key, head_size, cos_sin_cache, is_neox);
  });
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
