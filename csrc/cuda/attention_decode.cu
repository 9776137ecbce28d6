// Paged attention for decode steps (one query token per sequence): split-KV flash decoding over the paged cache.
//
// One block per (token, KV head, group chunk of up to 8 query heads, split). Every query head of the chunk is served
// from the same K and V loads: a lane holds 8 contiguous elements of a key (one 16-byte load at 16 bits, two at
// fp32), a key takes a power-of-two group of lanes, so a warp has 32 / lanesPerKey keys in flight, K and V loaded
// together. The block ids of a tile of 128 keys are staged in shared memory once (one per thread) before the warps
// walk the tile. Each lane group keeps an online softmax per head; at the end every group's state goes to shared
// memory and the block merges them.
//
// The split: a sequence's keys (its context, or the part of it its sliding window sees; no key before the window is
// read) are cut into at most maxSplits chunks of at least 128 keys, from its own context length as the kernel reads
// it from seqLens (so a captured graph adapts to the contexts it replays with), and
// maxSplits comes from the SM count and the number of (KV head, group chunk) pairs alone, never from the batch or
// maxModelLen: the scratch for the partials is bounded by the SM count, and a graph of a padded batch computes
// the same bits as an eager step of the real one. A sequence cut into one chunk writes its output directly; others
// write normalised partials and their (max, sum) for the reduce kernel.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "attention.cuh"

namespace mvllm::cuda {
namespace {

constexpr int kMaxGroup = 8;  // query heads per block (larger groups take several blocks)
constexpr int kDecodeThreads = 128, kDecodeWarps = kDecodeThreads / 32;
constexpr int kTileKeys = kDecodeThreads;  // keys whose block ids are staged at once, one per thread
constexpr int kLaneElems = 8;              // elements of a key per lane
constexpr int kMaxHead = 256;
constexpr int kMinSplitKeys = 128;  // a split covers at least this many keys
constexpr int kSplitWaves = 2;      // split until the blocks of one token cover the SMs this many times
constexpr int kMaxSplits = 32;

struct Split {
  int chunk, used;
};

// The most chunks a context of ctx keys is cut into: one per 128 keys, at most max_splits. Grows with ctx.
__host__ __device__ __forceinline__ int max_chunks(int64_t ctx, int max_splits) {
  const int64_t n = (ctx + kMinSplitKeys - 1) / kMinSplitKeys;
  return n < 1 ? 1 : (n > max_splits ? max_splits : int(n));
}

// A context of ctx keys cut into `used` chunks of `chunk` keys (a multiple of 16; the last may be shorter). Rounding
// the chunk up may leave fewer than max_chunks(ctx) chunks, never more.
__host__ __device__ __forceinline__ Split split_of(int ctx, int max_splits) {
  const int used = max_chunks(ctx, max_splits);
  int chunk = (ctx + used - 1) / used;
  chunk = (chunk + 15) & ~15;
  return {chunk, (ctx + chunk - 1) / chunk};
}

// 8 elements of T from p (16-byte aligned when vec) as floats.
template <typename T>
__device__ __forceinline__ void load8(float (&f)[kLaneElems], const T* p, bool vec) {
  constexpr int N = 16 / sizeof(T);
  if (vec) {
#pragma unroll
    for (int h = 0; h < kLaneElems / N; ++h) {
      const Pack<T, N> pk = reinterpret_cast<const Pack<T, N>*>(p)[h];
#pragma unroll
      for (int i = 0; i < N; ++i) f[h * N + i] = to_f(pk.v[i]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kLaneElems; ++i) f[i] = to_f(p[i]);
  }
}

// Weight of a state with max `mx` under the joint max `m` (0 for an empty state, whose max is -inf).
__device__ __forceinline__ float rescale(float mx, float m) { return mx == -INFINITY ? 0.f : __expf(mx - m); }

// grid: (numTokens, numKvHeads * groupChunks, splits), block: 128 (4 warps).
template <typename T>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_kernel(T* __restrict__ out, int64_t out_s0, int64_t out_s1,                 // [numTokens, numHeads, D]
                  const T* __restrict__ query, int64_t q_s0, int64_t q_s1,             // [numTokens, numHeads, D]
                  const T* __restrict__ key_cache, const T* __restrict__ value_cache,  // [B, bs, Hkv, D]
                  MetaArgs m, int num_heads, int kv_heads, int head_size, float scale,
                  float* __restrict__ part_out,  // [numTokens, numHeads, splitStride, D]
                  float* __restrict__ part_ml,   // [numTokens, numHeads, splitStride, 2]: max, sum
                  int max_splits, int split_stride, bool vec, bool only_single, unsigned* flags) {
  __shared__ int64_t blk_s[kTileKeys];
  // Each lane group's softmax state (max, sum) and its dims of the output, for the block's final merge: kpw groups
  // per warp of head_size dims each (kpw * head_size <= 256 for every lanes-per-key choice).
  __shared__ float red_ml[kDecodeWarps][32][kMaxGroup][2];
  __shared__ float red_acc[kDecodeWarps][kMaxGroup][kMaxHead];

  const int group = num_heads / kv_heads;
  const int chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const int kvh = blockIdx.y / chunks, g0 = (blockIdx.y % chunks) * kMaxGroup;
  const int gcount = min(kMaxGroup, group - g0);
  const int t = blockIdx.x, part = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  const int s = seq_of_token(m, t);
  if (!seq_valid(m, s, flags)) return;
  const int q_len = m.query_start_loc[s + 1] - m.query_start_loc[s];
  if (only_single && q_len != 1) return;  // the prefill kernel's
  const int ctx = m.seq_lens[s] - q_len + (t - m.query_start_loc[s]) + 1;
  // the keys [k_lo, ctx) this token sees (its sliding window), split into chunks
  const int k_lo = window_start(m, ctx - 1);
  const Split sp = split_of(ctx - k_lo, max_splits);
  if (part >= sp.used) return;  // this split is past the context; the reduce counts only the used ones
  const int p0 = k_lo + part * sp.chunk, p1 = min(ctx, p0 + sp.chunk);
  const int64_t slot_stride = int64_t(kv_heads) * head_size;

  // Lanes per key: a power of two covering head_size in pieces of 8; keys per warp at once.
  const int pieces = head_size / kLaneElems;
  int lpk = 1;
  while (lpk < pieces) lpk <<= 1;
  const int kpw = 32 / lpk, sub = lane / lpk, d0 = (lane % lpk) * kLaneElems;
  const bool has = d0 < head_size;

  float qr[kMaxGroup][kLaneElems], acc[kMaxGroup][kLaneElems], mx[kMaxGroup], l[kMaxGroup];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    mx[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < kLaneElems; ++i) {
      acc[g][i] = 0.f;
      qr[g][i] =
          g < gcount && has ? to_f(query[t * q_s0 + int64_t(kvh * group + g0 + g) * q_s1 + d0 + i]) * scale : 0.f;
    }
  }

  for (int base = p0; base < p1; base += kTileKeys) {
    const int n = min(kTileKeys, p1 - base);
    __syncthreads();  // the previous tile's ids are no longer read
    if (int(threadIdx.x) < n) blk_s[threadIdx.x] = block_of(m, s, base + threadIdx.x, flags);
    __syncthreads();
    // Every lane runs the same trip count (the shuffles below take the whole warp); a lane past the tile has no key.
    for (int j0 = warp * kpw; j0 < n; j0 += kDecodeWarps * kpw) {
      const int j = j0 + sub;
      const int64_t blk = j < n ? blk_s[j] : -1;
      float kf[kLaneElems], vf[kLaneElems];
      if (blk >= 0 && has) {
        const int64_t off =
            (blk * m.block_size + (base + j) % m.block_size) * slot_stride + int64_t(kvh) * head_size + d0;
        load8(kf, key_cache + off, vec);
        load8(vf, value_cache + off, vec);
      } else {
#pragma unroll
        for (int i = 0; i < kLaneElems; ++i) kf[i] = vf[i] = 0.f;
      }
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g >= gcount) break;
        float sc = 0.f;
#pragma unroll
        for (int i = 0; i < kLaneElems; ++i) sc += qr[g][i] * kf[i];
        for (int o = lpk >> 1; o > 0; o >>= 1) sc += __shfl_xor_sync(0xffffffffu, sc, o);
        sc = soft_cap(m, sc);
        if (blk >= 0) {
          const float mn = fmaxf(mx[g], sc);
          const float corr = rescale(mx[g], mn), p = __expf(sc - mn);
          l[g] = l[g] * corr + p;
#pragma unroll
          for (int i = 0; i < kLaneElems; ++i) acc[g][i] = acc[g][i] * corr + p * vf[i];
          mx[g] = mn;
        }
      }
    }
  }

  // Every lane group's state goes to shared memory (no shuffles: one barrier), and the block merges them all.
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= gcount) break;
    if (lane % lpk == 0) {
      red_ml[warp][sub][g][0] = mx[g];
      red_ml[warp][sub][g][1] = l[g];
    }
    if (has)
#pragma unroll
      for (int i = 0; i < kLaneElems; ++i) red_acc[warp][g][sub * head_size + d0 + i] = acc[g][i];
  }
  __syncthreads();

  const bool whole = sp.used == 1;
  for (int i = threadIdx.x; i < gcount * head_size; i += blockDim.x) {
    const int g = i / head_size, d = i % head_size, h = kvh * group + g0 + g;
    float mn = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w)
      for (int k = 0; k < kpw; ++k) mn = fmaxf(mn, red_ml[w][k][g][0]);
    float sum = 0.f, o = 0.f;
    for (int w = 0; w < kDecodeWarps; ++w)
      for (int k = 0; k < kpw; ++k) {
        const float e = rescale(red_ml[w][k][g][0], mn);
        sum += red_ml[w][k][g][1] * e;
        o += red_acc[w][g][k * head_size + d] * e;
      }
    const float v = sum > 0.f ? o / sum : 0.f;
    if (whole) {
      out[t * out_s0 + int64_t(h) * out_s1 + d] = from_f<T>(v);
    } else {
      const int64_t row = (int64_t(t) * num_heads + h) * split_stride + part;
      part_out[row * head_size + d] = v;
      if (d == 0) {
        part_ml[row * 2] = mn;
        part_ml[row * 2 + 1] = sum;
      }
    }
  }
}

// grid: (numTokens, numHeads), block: 128. Combines a sequence's splits: weights sum_p · e^(max_p - max).
template <typename T>
__global__ void decode_reduce_kernel(T* __restrict__ out, int64_t out_s0, int64_t out_s1, MetaArgs m, int num_heads,
                                     int head_size, const float* __restrict__ part_out,
                                     const float* __restrict__ part_ml, int max_splits, int split_stride) {
  const int t = blockIdx.x, h = blockIdx.y;
  const int s = seq_of_token(m, t);
  if (!seq_ok(m, s)) return;  // reported by the decode kernel, which wrote nothing for it
  const int q0 = m.query_start_loc[s], q1 = m.query_start_loc[s + 1];
  const int ctx = m.seq_lens[s] - (q1 - q0) + (t - q0) + 1;
  const int used = split_of(ctx - window_start(m, ctx - 1), max_splits).used;
  if (used == 1) return;  // the decode kernel wrote the output itself
  const int64_t row = (int64_t(t) * num_heads + h) * split_stride;
  const float* po = part_out + row * head_size;
  const float* ml = part_ml + row * 2;
  float mn = -INFINITY;
  for (int p = 0; p < used; ++p) mn = fmaxf(mn, ml[2 * p]);
  float total = 0.f;
  for (int p = 0; p < used; ++p) total += ml[2 * p + 1] * rescale(ml[2 * p], mn);
  for (int d = threadIdx.x; d < head_size; d += blockDim.x) {
    float v = 0.f;
    for (int p = 0; p < used; ++p) v += po[int64_t(p) * head_size + d] * ml[2 * p + 1] * rescale(ml[2 * p], mn);
    out[t * out_s0 + int64_t(h) * out_s1 + d] = from_f<T>(total > 0.f ? v / total : 0.f);
  }
}

}  // namespace

void attention_decode(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                      const TensorView& value_cache, const MetaArgs& m, float scale, int64_t max_ctx, cudaStream_t st,
                      unsigned* flags, bool only_single) {
  const int device = key_cache.device_index;
  const int num_tokens = int(query.size(0)), num_heads = int(query.size(1));
  const int kv_heads = int(key_cache.size(2)), head_size = int(key_cache.size(3));
  const int group = num_heads / kv_heads, chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const int head_blocks = kv_heads * chunks;
  // From the SM count and the heads alone (see the top of the file); the grid then covers the longest context.
  // A mixed batch's step has as many tokens as prefill chunks bring: no partials for them (one split each).
  const int max_splits =
      only_single ? 1 : std::clamp((kSplitWaves * sm_count(device) + head_blocks - 1) / head_blocks, 1, kMaxSplits);
  // Enough for any context up to max_ctx (split_of(ctx).used <= max_chunks(ctx) <= max_chunks(max_ctx)).
  const int splits = max_chunks(max_ctx, max_splits);
  float* part_out = nullptr;
  float* part_ml = nullptr;
  if (splits > 1) {
    const size_t n = size_t(num_tokens) * num_heads * splits;
    float* base = static_cast<float*>(scratch(device, n * (size_t(head_size) + 2) * sizeof(float)));
    part_out = base;
    part_ml = base + n * size_t(head_size);
  }
  if (head_blocks > 65535) fail(ErrorKind::Range, "pagedAttention: too many heads for the CUDA decode grid");
  const bool vec = aligned16(key_cache.data) && aligned16(value_cache.data);
  MVLLM_CUDA_DISPATCH_FLOAT(query.dtype, T, {
    MVLLM_LAUNCH(dim3(unsigned(num_tokens), unsigned(head_blocks), unsigned(splits)), kDecodeThreads, 0, st,
                 decode_kernel<T>)(out.ptr<T>(), out.stride(0), out.stride(1), query.ptr<T>(), query.stride(0),
                                   query.stride(1), key_cache.ptr<T>(), value_cache.ptr<T>(), m, num_heads, kv_heads,
                                   head_size, scale, part_out, part_ml, max_splits, splits, vec, only_single, flags);
    check_launch("pagedAttention (decode)");
    if (splits > 1) {
      MVLLM_LAUNCH(dim3(unsigned(num_tokens), unsigned(num_heads)), 128, 0, st, decode_reduce_kernel<T>)(
          out.ptr<T>(), out.stride(0), out.stride(1), m, num_heads, head_size, part_out, part_ml, max_splits, splits);
      check_launch("pagedAttention (split-KV reduce)");
    }
  });
}

}  // namespace mvllm::cuda
