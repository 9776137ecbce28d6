// Paged attention on CUDA: causal softmax(q·kᵀ·scale)·v over K/V gathered through block tables, fp32 math.
//
// Two kernels behind one op:
//  - decode (every sequence has one query token, or the caller said maxQueryLen = 1): one block per
//    (token, KV head, partition of 512 keys); the query heads of the group share each K/V read. Long contexts
//    are split across partitions and combined by a reduce kernel (vLLM's paged attention v2 / FlashInfer's
//    split-KV).
//  - prefill and mixed batches: a flash-style kernel, one block per (16 query tokens of a sequence, head),
//    walking the keys in tiles of 32 with an online softmax.
// Neither reads a cache slot at or past seqLens (stale memory may hold NaN). Bad metadata is reported through
// the device-assert word and the affected rows are skipped, never read out of bounds.
#include <cfloat>

#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

constexpr int kPartition = 512;  // keys per decode block
constexpr int kMaxGroup = 8;     // query heads per decode block (larger groups take several blocks)
constexpr int kDecodeThreads = 128;

struct MetaArgs {
  const int32_t* query_start_loc;  // [numSeqs + 1]
  const int32_t* seq_lens;         // [numSeqs]
  const int32_t* block_tables;     // [numSeqs, width]
  int num_seqs, width, num_tokens;
  int max_seq_len, max_query_len;  // -1: unknown
  int64_t num_blocks;
  int block_size;
};

// The sequence owning flat query token t (binary search over queryStartLoc).
__device__ __forceinline__ int seq_of_token(const MetaArgs& m, int t) {
  int lo = 0, hi = m.num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (m.query_start_loc[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// Whether sequence s's metadata is usable. Every kernel that reads a sequence's rows asks this same question, so a
// sequence one kernel skips is skipped by all (the split-KV reduce must not combine partials never written).
__device__ __forceinline__ bool seq_ok(const MetaArgs& m, int s) {
  const int q0 = m.query_start_loc[s], q1 = m.query_start_loc[s + 1], len = m.seq_lens[s];
  return q0 >= 0 && q1 >= q0 && q1 <= m.num_tokens && len >= q1 - q0 &&
         int64_t(len) <= int64_t(m.width) * m.block_size && (m.max_seq_len < 0 || len <= m.max_seq_len) &&
         (m.max_query_len < 0 || q1 - q0 <= m.max_query_len);
}

// seq_ok, setting the assert bit when not.
__device__ __forceinline__ bool seq_valid(const MetaArgs& m, int s, unsigned* flags) {
  const bool ok = seq_ok(m, s);
  if (!ok) atomicOr(flags, unsigned(kAttentionMetaInvalid));
  return ok;
}

// The pool block holding position p of sequence s, or -1 (and the assert bit) if the table entry is bad.
__device__ __forceinline__ int64_t block_of(const MetaArgs& m, int s, int p, unsigned* flags) {
  const int64_t id = m.block_tables[int64_t(s) * m.width + p / m.block_size];
  if (id < 0 || id >= m.num_blocks) {
    atomicOr(flags, unsigned(kBlockIdOutOfRange));
    return -1;
  }
  return id;
}

// grid: ceil(numSeqs / 128), block: 128. Whole-batch checks a per-token kernel cannot see.
__global__ void check_meta_kernel(MetaArgs m, unsigned* flags) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s == 0 && (m.query_start_loc[0] != 0 || m.query_start_loc[m.num_seqs] != m.num_tokens))
    atomicOr(flags, unsigned(kAttentionMetaInvalid));
  if (s < m.num_seqs) seq_valid(m, s, flags);
}

// ---- decode ----

// grid: (numTokens, numKvHeads * groupChunks, partitions), block: 128 (4 warps).
// Writes the normalised partial output and its (max, sum) when partitions > 1, else the final output.
template <typename T>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_kernel(T* __restrict__ out, int64_t out_s0, int64_t out_s1,                 // [numTokens, numHeads, D]
                  const T* __restrict__ query, int64_t q_s0, int64_t q_s1,             // [numTokens, numHeads, D]
                  const T* __restrict__ key_cache, const T* __restrict__ value_cache,  // [B, bs, Hkv, D]
                  MetaArgs m, int num_heads, int kv_heads, int head_size, float scale,
                  float* __restrict__ part_out,  // [numTokens, numHeads, partitions, D]
                  float* __restrict__ part_ml,   // [numTokens, numHeads, partitions, 2]: max, sum
                  int partitions, unsigned* flags) {
  __shared__ float q_s[kMaxGroup][256];
  __shared__ float logits[kMaxGroup][kPartition];
  __shared__ float red[kDecodeThreads / 32][256];
  __shared__ float stat[kMaxGroup][2];

  const int group = num_heads / kv_heads;
  const int chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const int kvh = blockIdx.y / chunks, g0 = (blockIdx.y % chunks) * kMaxGroup;
  const int gcount = min(kMaxGroup, group - g0);
  const int t = blockIdx.x, part = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  const int s = seq_of_token(m, t);
  if (!seq_valid(m, s, flags)) return;
  const int q_len = m.query_start_loc[s + 1] - m.query_start_loc[s];
  const int pos = m.seq_lens[s] - q_len + (t - m.query_start_loc[s]);
  const int ctx = pos + 1;
  const int p0 = part * kPartition;
  if (p0 >= ctx) return;  // this partition is past the context; the reduce skips it
  const int p1 = min(ctx, p0 + kPartition);
  const int64_t slot_stride = int64_t(kv_heads) * head_size;

  for (int i = threadIdx.x; i < gcount * head_size; i += blockDim.x) {
    const int g = i / head_size, d = i % head_size;
    q_s[g][d] = to_f(query[t * q_s0 + int64_t(kvh * group + g0 + g) * q_s1 + d]) * scale;
  }
  __syncthreads();

  // scores: one warp per key, lanes across headSize
  for (int p = p0 + warp; p < p1; p += kDecodeThreads / 32) {
    const int64_t blk = block_of(m, s, p, flags);
    float part_dot[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) part_dot[g] = 0.f;
    if (blk >= 0) {
      const T* k = key_cache + (blk * m.block_size + p % m.block_size) * slot_stride + int64_t(kvh) * head_size;
      for (int d = lane; d < head_size; d += 32) {
        const float kv = to_f(k[d]);
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g)
          if (g < gcount) part_dot[g] += q_s[g][d] * kv;
      }
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= gcount) break;
      const float v = warp_sum(part_dot[g]);
      if (lane == 0) logits[g][p - p0] = blk >= 0 ? v : -FLT_MAX;
    }
  }
  __syncthreads();

  // softmax statistics per head: warp g handles heads g, g + 4, ...
  for (int g = warp; g < gcount; g += kDecodeThreads / 32) {
    float mx = -FLT_MAX;
    for (int i = lane; i < p1 - p0; i += 32) mx = fmaxf(mx, logits[g][i]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0.f;
    for (int i = lane; i < p1 - p0; i += 32) {
      const float e = __expf(logits[g][i] - mx);
      logits[g][i] = e;
      sum += e;
    }
    sum = warp_sum(sum);
    if (lane == 0) {
      stat[g][0] = mx;
      stat[g][1] = sum;
    }
  }
  __syncthreads();

  // out = Σ p·v: warps split the keys, lanes split headSize (up to 8 dims each), then a cross-warp sum
  for (int g = 0; g < gcount; ++g) {
    float acc[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] = 0.f;
    for (int p = p0 + warp; p < p1; p += kDecodeThreads / 32) {
      const int64_t blk = block_of(m, s, p, flags);
      if (blk < 0) continue;
      const float w = logits[g][p - p0];
      const T* v = value_cache + (blk * m.block_size + p % m.block_size) * slot_stride + int64_t(kvh) * head_size;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int d = lane + 32 * i;
        if (d < head_size) acc[i] += w * to_f(v[d]);
      }
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int d = lane + 32 * i;
      if (d < head_size) red[warp][d] = acc[i];
    }
    __syncthreads();
    const int h = kvh * group + g0 + g;
    for (int d = threadIdx.x; d < head_size; d += blockDim.x) {
      float v = 0.f;
#pragma unroll
      for (int w = 0; w < kDecodeThreads / 32; ++w) v += red[w][d];
      v /= stat[g][1];
      if (partitions == 1) {
        out[t * out_s0 + int64_t(h) * out_s1 + d] = from_f<T>(v);
      } else {
        part_out[((int64_t(t) * num_heads + h) * partitions + part) * head_size + d] = v;
      }
    }
    if (partitions > 1 && threadIdx.x == 0) {
      float* ml = part_ml + ((int64_t(t) * num_heads + h) * partitions + part) * 2;
      ml[0] = stat[g][0];
      ml[1] = stat[g][1];
    }
    __syncthreads();
  }
}

// grid: (numTokens, numHeads), block: 128. Combines the partitions: weights sum_p · e^(max_p - max).
template <typename T>
__global__ void decode_reduce_kernel(T* __restrict__ out, int64_t out_s0, int64_t out_s1, MetaArgs m, int num_heads,
                                     int head_size, const float* __restrict__ part_out,
                                     const float* __restrict__ part_ml, int partitions) {
  const int t = blockIdx.x, h = blockIdx.y;
  const int s = seq_of_token(m, t);
  if (!seq_ok(m, s)) return;  // reported by the decode kernel, which wrote no partials for it
  const int q0 = m.query_start_loc[s], q1 = m.query_start_loc[s + 1], len = m.seq_lens[s];
  const int ctx = len - (q1 - q0) + (t - q0) + 1;
  const int used = min(partitions, (ctx + kPartition - 1) / kPartition);
  const float* po = part_out + (int64_t(t) * num_heads + h) * partitions * head_size;
  if (used == 1) {
    // NOTE: copied, not rescaled: the same bits as an unsplit launch, so a graph captured for the longest context
    // gives what eager execution gives for short ones.
    for (int d = threadIdx.x; d < head_size; d += blockDim.x)
      out[t * out_s0 + int64_t(h) * out_s1 + d] = from_f<T>(po[d]);
    return;
  }
  const float* ml = part_ml + (int64_t(t) * num_heads + h) * partitions * 2;
  float mx = -FLT_MAX;
  for (int p = 0; p < used; ++p) mx = fmaxf(mx, ml[2 * p]);
  float total = 0.f;
  for (int p = 0; p < used; ++p) total += ml[2 * p + 1] * __expf(ml[2 * p] - mx);
  for (int d = threadIdx.x; d < head_size; d += blockDim.x) {
    float v = 0.f;
    for (int p = 0; p < used; ++p) v += po[int64_t(p) * head_size + d] * ml[2 * p + 1] * __expf(ml[2 * p] - mx);
    out[t * out_s0 + int64_t(h) * out_s1 + d] = from_f<T>(v / total);
  }
}

// ---- prefill (flash-style) ----

constexpr int kRowsPerWarp = 4, kFlashWarps = 4, kFlashRows = kRowsPerWarp * kFlashWarps, kKeyTile = 32;

// grid: (numSeqs, ceil(maxQueryLen / 16), numHeads), block: 128 (4 warps x 4 query rows).
// Dynamic shared memory: K tile [32][D + 1], V tile [32][D], Q [16][D], all fp32.
template <typename T>
__global__ void __launch_bounds__(kFlashWarps * 32)
    flash_kernel(T* __restrict__ out, int64_t out_s0, int64_t out_s1, const T* __restrict__ query, int64_t q_s0,
                 int64_t q_s1, const T* __restrict__ key_cache, const T* __restrict__ value_cache, MetaArgs m,
                 int num_heads, int kv_heads, int head_size, float scale, unsigned* flags) {
  MVLLM_DYNAMIC_SHARED(float, smem);
  const int D = head_size;
  float* k_s = smem;                      // [32][D + 1]
  float* v_s = k_s + kKeyTile * (D + 1);  // [32][D]
  float* q_s = v_s + kKeyTile * D;        // [16][D]

  const int s = blockIdx.x, h = blockIdx.z;
  if (!seq_valid(m, s, flags)) return;
  const int q_start = m.query_start_loc[s];
  const int q_len = m.query_start_loc[s + 1] - q_start;
  const int row0 = blockIdx.y * kFlashRows;
  if (row0 >= q_len) return;
  const int first_pos = m.seq_lens[s] - q_len;
  const int rows = min(kFlashRows, q_len - row0);
  const int last_pos = first_pos + row0 + rows - 1;
  const int kvh = h / (num_heads / kv_heads);
  const int64_t slot_stride = int64_t(kv_heads) * D;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  for (int i = threadIdx.x; i < kFlashRows * D; i += blockDim.x) {
    const int r = i / D, d = i % D;
    q_s[i] = r < rows ? to_f(query[int64_t(q_start + row0 + r) * q_s0 + int64_t(h) * q_s1 + d]) * scale : 0.f;
  }

  float mx[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][8];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    mx[r] = -FLT_MAX;
    l[r] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[r][i] = 0.f;
  }

  for (int k0 = 0; k0 <= last_pos; k0 += kKeyTile) {
    const int nk = min(kKeyTile, last_pos + 1 - k0);
    __syncthreads();  // the previous tile is no longer read
    for (int i = threadIdx.x; i < kKeyTile * D; i += blockDim.x) {
      const int j = i / D, d = i % D;
      float kv = 0.f, vv = 0.f;
      if (j < nk) {
        const int64_t blk = block_of(m, s, k0 + j, flags);
        if (blk >= 0) {
          const int64_t off = (blk * m.block_size + (k0 + j) % m.block_size) * slot_stride + int64_t(kvh) * D + d;
          kv = to_f(key_cache[off]);
          vv = to_f(value_cache[off]);
        }
      }
      k_s[j * (D + 1) + d] = kv;
      v_s[j * D + d] = vv;
    }
    __syncthreads();

    // lane = key: scores of this warp's rows
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp * kRowsPerWarp + r;
      const int pos = first_pos + row0 + row;
      const bool live = row < rows;
      float sc = -FLT_MAX;
      if (live && lane < nk && k0 + lane <= pos) {
        sc = 0.f;
        const float* q = q_s + row * D;
        const float* k = k_s + lane * (D + 1);
        for (int d = 0; d < D; ++d) sc += q[d] * k[d];
      }
      float tile_max = sc;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, o));
      const float new_max = fmaxf(mx[r], tile_max);
      // masked keys get weight 0; a row with nothing visible yet keeps max -FLT_MAX and weight 0
      const float p = sc == -FLT_MAX ? 0.f : __expf(sc - new_max);
      const float corr = mx[r] == -FLT_MAX ? 0.f : __expf(mx[r] - new_max);
      l[r] = l[r] * corr + warp_sum(p);
      mx[r] = new_max;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[r][i] *= corr;
      for (int j = 0; j < nk; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const int d = lane + 32 * i;
          if (d < D) acc[r][i] += pj * v_s[j * D + d];
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    if (row >= rows) continue;
    T* o = out + int64_t(q_start + row0 + row) * out_s0 + int64_t(h) * out_s1;
    const float inv = 1.f / l[r];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int d = lane + 32 * i;
      if (d < D) o[d] = from_f<T>(acc[r][i] * inv);
    }
  }
}

}  // namespace

void paged_attention(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                     const TensorView& value_cache, const AttentionMeta& meta) {
  const int device = key_cache.device_index;
  cudaStream_t st = stream(device);
  unsigned* flags = assert_flags(device);
  const int num_tokens = int(query.size(0)), num_heads = int(query.size(1));
  const int kv_heads = int(key_cache.size(2)), head_size = int(key_cache.size(3));
  MetaArgs m;
  m.query_start_loc = meta.query_start_loc.ptr<int32_t>();
  m.seq_lens = meta.seq_lens.ptr<int32_t>();
  m.block_tables = meta.block_tables.ptr<int32_t>();
  m.num_seqs = int(meta.seq_lens.size(0));
  m.width = int(meta.block_tables.size(1));
  m.num_tokens = num_tokens;
  m.max_seq_len = int(meta.max_seq_len);
  m.max_query_len = int(meta.max_query_len);
  m.num_blocks = key_cache.size(0);
  m.block_size = int(key_cache.size(1));
  if (m.num_seqs == 0) fail(ErrorKind::Range, "pagedAttention: numTokens > 0 needs at least one sequence");
  MVLLM_LAUNCH(blocks_for(m.num_seqs, 128), 128, 0, st, check_meta_kernel)(m, flags);
  check_launch("pagedAttention (metadata check)");

  const int64_t capacity = int64_t(m.width) * m.block_size;
  const int64_t max_ctx = meta.max_seq_len >= 0 ? meta.max_seq_len : capacity;
  const bool decode = meta.max_query_len == 1 || num_tokens == m.num_seqs;
  const float scale = float(meta.scale);
  MVLLM_CUDA_DISPATCH_FLOAT(query.dtype, T, {
    if (decode) {
      const int group = num_heads / kv_heads, chunks = (group + kMaxGroup - 1) / kMaxGroup;
      const int partitions = int(std::max<int64_t>(1, (max_ctx + kPartition - 1) / kPartition));
      float* part_out = nullptr;
      float* part_ml = nullptr;
      if (partitions > 1) {
        const size_t n = size_t(num_tokens) * num_heads * partitions;
        float* base = static_cast<float*>(scratch(device, n * (size_t(head_size) + 2) * sizeof(float)));
        part_out = base;
        part_ml = base + n * size_t(head_size);
      }
      if (kv_heads * chunks > 65535 || partitions > 65535)
        fail(ErrorKind::Range, "pagedAttention: too many heads or too long a context for the CUDA decode grid");
      dim3 grid(unsigned(num_tokens), unsigned(kv_heads * chunks), unsigned(partitions));
      MVLLM_LAUNCH(grid, kDecodeThreads, 0, st, decode_kernel<T>)(
          out.ptr<T>(), out.stride(0), out.stride(1), query.ptr<T>(), query.stride(0), query.stride(1),
          key_cache.ptr<T>(), value_cache.ptr<T>(), m, num_heads, kv_heads, head_size, scale, part_out, part_ml,
          partitions, flags);
      check_launch("pagedAttention (decode)");
      if (partitions > 1) {
        MVLLM_LAUNCH(dim3(unsigned(num_tokens), unsigned(num_heads)), 128, 0, st, decode_reduce_kernel<T>)(
            out.ptr<T>(), out.stride(0), out.stride(1), m, num_heads, head_size, part_out, part_ml, partitions);
        check_launch("pagedAttention (split-KV reduce)");
      }
    } else {
      const int max_q = meta.max_query_len >= 0 ? int(meta.max_query_len) : num_tokens;
      const size_t smem = size_t(kKeyTile * (head_size + 1) + kKeyTile * head_size + kFlashRows * head_size) * 4;
      check(cudaFuncSetAttribute(flash_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
            "pagedAttention (shared memory)");
      const int q_tiles = std::max(1, (max_q + kFlashRows - 1) / kFlashRows);
      if (q_tiles > 65535 || num_heads > 65535)
        fail(ErrorKind::Range, "pagedAttention: too many query tokens per sequence or heads for the CUDA grid");
      dim3 grid(unsigned(m.num_seqs), unsigned(q_tiles), unsigned(num_heads));
      MVLLM_LAUNCH(grid, kFlashWarps * 32, smem, st, flash_kernel<T>)(
          out.ptr<T>(), out.stride(0), out.stride(1), query.ptr<T>(), query.stride(0), query.stride(1),
          key_cache.ptr<T>(), value_cache.ptr<T>(), m, num_heads, kv_heads, head_size, scale, flags);
      check_launch("pagedAttention (prefill)");
    }
  });
}

}  // namespace mvllm::cuda
