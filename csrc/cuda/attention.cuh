// Paged attention's shared pieces: the batch metadata as kernels read it, and the checks every kernel applies the
// same way (a sequence one kernel skips is skipped by all). attention.cu holds the entry point and the prefill kernel,
// attention_decode.cu the decode kernels.
#pragma once

#include "common.cuh"

namespace mvllm::cuda {

struct MetaArgs {
  const int32_t* query_start_loc;  // [numSeqs + 1]
  const int32_t* seq_lens;         // [numSeqs]
  const int32_t* block_tables;     // [numSeqs, width]
  int num_seqs, width, num_tokens;
  int max_seq_len, max_query_len;  // -1: unknown
  int64_t num_blocks;
  int block_size;
  int window;  // > 0: a token at position p sees keys [p - window + 1, p] only
  float cap;   // > 0: scores soft-capped to cap * tanh(score / cap)
};

// The first key a token at position `pos` sees.
__device__ __forceinline__ int window_start(const MetaArgs& m, int pos) {
  return m.window > 0 ? max(0, pos - m.window + 1) : 0;
}

// Gemma 2's soft-capping of a score (scale applied), or the score as it is.
__device__ __forceinline__ float soft_cap(const MetaArgs& m, float score) {
  return m.cap > 0.f ? m.cap * tanhf(score / m.cap) : score;
}

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

// Decode (one query token per sequence): split-KV over the keys, sized by the SM count, then the reduce.
// `max_ctx` bounds every sequence's context (maxSeqLen, or the block tables' capacity when unknown). only_single: a
// mixed batch, where this serves only the sequences with one query token (unsplit) and attention_prefill_mma the rest.
void attention_decode(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                      const TensorView& value_cache, const MetaArgs& m, float scale, int64_t max_ctx, cudaStream_t st,
                      unsigned* flags, bool only_single = false);

// Prefill and mixed batches on tensor cores (f16/bf16, head sizes 64, 80, 96, 112, 128, 256, 16-byte aligned rows,
// sm_80+): the sequences with more than one query token; false (nothing launched) where it does not apply.
bool attention_prefill_mma(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                           const TensorView& value_cache, const MetaArgs& m, float scale, int max_q, cudaStream_t st,
                           unsigned* flags);

}  // namespace mvllm::cuda
