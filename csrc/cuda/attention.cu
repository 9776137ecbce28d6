// Paged attention on CUDA: causal softmax(q·kᵀ·scale)·v over K/V gathered through block tables, fp32 math.
//
// Two kernels behind one op:
//  - decode (every sequence has one query token, or the caller said maxQueryLen = 1): attention_decode.cu, split-KV
//    sized by the SM count, the query heads of a KV head sharing each K/V read.
//  - prefill and mixed batches: f16/bf16 on tensor cores where the head size allows (attention_prefill.cu, with the
//    decode kernel for the one-token sequences of the batch); otherwise (float32, other head sizes, sm_75) the SIMT
//    flash-style kernel here, one block per (16 query tokens of a sequence, head), keys in tiles of 32.
// Neither reads a cache slot at or past seqLens (stale memory may hold NaN), nor one before every row's sliding window.
// Bad metadata is reported through the device-assert word and the affected rows are skipped, never read out of bounds.
#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "api.h"
#include "attention.cuh"

namespace mvllm::cuda {
namespace {

// grid: ceil(numSeqs / 128), block: 128. Whole-batch checks a per-token kernel cannot see.
__global__ void check_meta_kernel(MetaArgs m, unsigned* flags) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s == 0 && (m.query_start_loc[0] != 0 || m.query_start_loc[m.num_seqs] != m.num_tokens))
    atomicOr(flags, unsigned(kAttentionMetaInvalid));
  if (s < m.num_seqs) seq_valid(m, s, flags);
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

  // keys before the first row's window are never read
  for (int k0 = window_start(m, first_pos + row0); k0 <= last_pos; k0 += kKeyTile) {
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
      if (live && lane < nk && k0 + lane <= pos && k0 + lane >= window_start(m, pos)) {
        sc = 0.f;
        const float* q = q_s + row * D;
        const float* k = k_s + lane * (D + 1);
        for (int d = 0; d < D; ++d) sc += q[d] * k[d];
        sc = soft_cap(m, sc);
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
  m.window = int(std::min<int64_t>(meta.sliding_window, INT32_MAX));
  m.cap = float(meta.logits_soft_cap);
  if (m.num_seqs == 0) fail(ErrorKind::Range, "pagedAttention: numTokens > 0 needs at least one sequence");
  MVLLM_LAUNCH(blocks_for(m.num_seqs, 128), 128, 0, st, check_meta_kernel)(m, flags);
  check_launch("pagedAttention (metadata check)");

  const int64_t capacity = int64_t(m.width) * m.block_size;
  const int64_t max_ctx = meta.max_seq_len >= 0 ? meta.max_seq_len : capacity;
  const bool decode = meta.max_query_len == 1 || num_tokens == m.num_seqs;
  const float scale = float(meta.scale);
  if (decode) {
    attention_decode(out, query, key_cache, value_cache, m, scale, max_ctx, st, flags);
    return;
  }
  const int max_q = meta.max_query_len >= 0 ? int(meta.max_query_len) : num_tokens;
  if (attention_prefill_mma(out, query, key_cache, value_cache, m, scale, max_q, st, flags)) {
    attention_decode(out, query, key_cache, value_cache, m, scale, max_ctx, st, flags, /*only_single=*/true);
    return;
  }
  MVLLM_CUDA_DISPATCH_FLOAT(query.dtype, T, {
    {
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
}  // namespace mvllm::cuda
);
}

}  // namespace mvllm::cuda
