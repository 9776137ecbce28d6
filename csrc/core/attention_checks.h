// The contract of the KV-cache write and paged attention (reshapeAndCache, pagedAttention), checked once for both
// backends: op_checks.h includes it before its op list.
#pragma once

#include <cstdint>

#include "check.h"

namespace mvllm {

// [numBlocks, blockSize, numKvHeads, headSize] K and V pools: one float dtype, one device, dense, same shape.
inline void check_kv_caches(const Check& c, const TensorView& k, const TensorView& v) {
  c.float_dtype(k, "keyCache");
  c.same_dtype(v, "valueCache", k, "keyCache");
  c.same_device(v, "valueCache", k, "keyCache");
  c.ndim(k, "keyCache", 4, "[numBlocks, blockSize, numKvHeads, headSize]");
  c.ndim(v, "valueCache", 4, "[numBlocks, blockSize, numKvHeads, headSize]");
  for (int d = 0; d < 4; ++d) c.dim(v, "valueCache", d, k.size(d), "the keyCache shape");
  c.contiguous(k, "keyCache");
  c.contiguous(v, "valueCache");
  c.distinct(k, "keyCache", v, "valueCache");
}

// Per-token [numTokens, numHeads, headSize] rows: heads may be strided (a view of a fused qkv buffer), each
// head's headSize values must be dense.
inline void check_heads(const Check& c, const TensorView& t, const char* name, int64_t tokens, int64_t heads,
                        int64_t head_size, const char* heads_what) {
  c.ndim(t, name, 3, "[numTokens, numHeads, headSize]");
  c.dim(t, name, 0, tokens, "numTokens");
  c.dim(t, name, 1, heads, heads_what);
  c.dim(t, name, 2, head_size, "headSize");
  c.rows_dense(t, name);
}

// key, value: [numTokens, numKvHeads, headSize]; caches: [numBlocks, blockSize, numKvHeads, headSize];
// slot_mapping: int32 [numTokens]. Slot values are checked by the backend (CPU: before writing; CUDA: on device).
inline void check_reshape_and_cache(const TensorView& key, const TensorView& value, const TensorView& key_cache,
                                    const TensorView& value_cache, const TensorView& slot_mapping) {
  const Check c("reshapeAndCache");
  check_kv_caches(c, key_cache, value_cache);
  c.same_dtype(key, "key", key_cache, "keyCache");
  c.same_dtype(value, "value", key_cache, "keyCache");
  c.same_device(key, "key", key_cache, "keyCache");
  c.same_device(value, "value", key_cache, "keyCache");
  c.same_device(slot_mapping, "slotMapping", key_cache, "keyCache");
  c.dtype(slot_mapping, "slotMapping", DType::Int32);
  c.ndim(slot_mapping, "slotMapping", 1, "[numTokens]");
  c.contiguous(slot_mapping, "slotMapping");
  const int64_t tokens = slot_mapping.size(0);
  check_heads(c, key, "key", tokens, key_cache.size(2), key_cache.size(3), "numKvHeads of keyCache");
  check_heads(c, value, "value", tokens, key_cache.size(2), key_cache.size(3), "numKvHeads of keyCache");
}

// The attention metadata of one step (all int32, on the op's device).
struct AttentionMeta {
  TensorView query_start_loc;  // [numSeqs + 1]
  TensorView seq_lens;         // [numSeqs]
  TensorView block_tables;     // [numSeqs, maxBlocksPerSeq]
  double scale = 1.0;
  int64_t max_seq_len = -1;    // optional hint (-1: unknown); a seqLen above it is an error
  int64_t max_query_len = -1;  // optional hint (-1: unknown); a query length above it is an error
  int64_t sliding_window = 0;  // > 0: a query token sees only the last sliding_window keys (itself included)
  double logits_soft_cap = 0;  // > 0: scores become cap * tanh(score / cap) before the softmax (Gemma 2)
};

// Head sizes every backend supports: a multiple of 8 (16-byte rows in 16-bit dtypes) up to 256.
constexpr int64_t kMaxHeadSize = 256;

inline void check_paged_attention(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                                  const TensorView& value_cache, const AttentionMeta& m) {
  const Check c("pagedAttention");
  check_kv_caches(c, key_cache, value_cache);
  c.same_dtype(query, "query", key_cache, "keyCache");
  c.same_dtype(out, "out", key_cache, "keyCache");
  c.same_device(query, "query", key_cache, "keyCache");
  c.same_device(out, "out", key_cache, "keyCache");
  const int64_t head_size = key_cache.size(3), kv_heads = key_cache.size(2);
  if (head_size % 8 != 0 || head_size > kMaxHeadSize)
    fail(ErrorKind::Range, "pagedAttention: headSize must be a multiple of 8 up to ", kMaxHeadSize, ", got ",
         head_size);
  c.ndim(query, "query", 3, "[numTokens, numHeads, headSize]");
  const int64_t tokens = query.size(0), heads = query.size(1);
  check_heads(c, query, "query", tokens, heads, head_size, "numHeads");
  check_heads(c, out, "out", tokens, heads, head_size, "numHeads of query");
  if (kv_heads < 1 || heads % kv_heads != 0)
    fail(ErrorKind::Range, "pagedAttention: numHeads (", heads, ") must be a multiple of numKvHeads (", kv_heads, ")");
  for (const TensorView* t : {&m.query_start_loc, &m.seq_lens, &m.block_tables}) {
    const char* name = t == &m.query_start_loc ? "queryStartLoc" : t == &m.seq_lens ? "seqLens" : "blockTables";
    c.dtype(*t, name, DType::Int32);
    c.same_device(*t, name, key_cache, "keyCache");
    c.contiguous(*t, name);
  }
  c.ndim(m.seq_lens, "seqLens", 1, "[numSeqs]");
  const int64_t seqs = m.seq_lens.size(0);
  c.ndim(m.query_start_loc, "queryStartLoc", 1, "[numSeqs + 1]");
  c.dim(m.query_start_loc, "queryStartLoc", 0, seqs + 1, "numSeqs + 1, numSeqs from seqLens");
  c.ndim(m.block_tables, "blockTables", 2, "[numSeqs, maxBlocksPerSeq]");
  c.dim(m.block_tables, "blockTables", 0, seqs, "numSeqs, from seqLens");
  if (!std::isfinite(m.scale) || m.scale == 0)
    fail(ErrorKind::Range, "pagedAttention: scale must be a finite nonzero number, got ", m.scale);
  const int64_t capacity = m.block_tables.size(1) * key_cache.size(1);
  if (m.max_seq_len > capacity)
    fail(ErrorKind::Range, "pagedAttention: maxSeqLen ", m.max_seq_len, " is above the block tables' capacity (",
         m.block_tables.size(1), " blocks x blockSize ", key_cache.size(1), " = ", capacity, ")");
  c.distinct(out, "out", query, "query");
}

// The host-side check of one step's attention metadata (CPU backend; CUDA checks the same on the device):
// queryStartLoc starts at 0, never decreases and ends at numTokens; each sequence's query fits in its context,
// each context fits its block-table row, and every block it reads is in the pool.
inline void check_attention_meta_values(const AttentionMeta& m, int64_t num_tokens, int64_t num_blocks,
                                        int64_t block_size) {
  // the window and the cap are checked when the meta object is read (binding/ops.cc), these are the values
  const int32_t* qsl = m.query_start_loc.ptr<int32_t>();
  const int32_t* lens = m.seq_lens.ptr<int32_t>();
  const int32_t* tables = m.block_tables.ptr<int32_t>();
  const int64_t seqs = m.seq_lens.size(0), width = m.block_tables.size(1);
  if (qsl[0] != 0) fail(ErrorKind::Range, "pagedAttention: queryStartLoc[0] must be 0, got ", qsl[0]);
  if (qsl[seqs] != num_tokens)
    fail(ErrorKind::Range, "pagedAttention: queryStartLoc[", seqs, "] = ", qsl[seqs],
         " must equal numTokens of query (", num_tokens, ")");
  for (int64_t s = 0; s < seqs; ++s) {
    const int64_t q_len = int64_t(qsl[s + 1]) - qsl[s], len = lens[s];
    if (q_len < 0)
      fail(ErrorKind::Range, "pagedAttention: queryStartLoc must not decrease, but [", s + 1, "] = ", qsl[s + 1],
           " < [", s, "] = ", qsl[s]);
    if (len < q_len)
      fail(ErrorKind::Range, "pagedAttention: seqLens[", s, "] = ", len, " is below that sequence's ", q_len,
           " query tokens");
    if (len > width * block_size)
      fail(ErrorKind::Range, "pagedAttention: seqLens[", s, "] = ", len, " is above the block tables' capacity (",
           width, " blocks x blockSize ", block_size, ")");
    if (m.max_seq_len >= 0 && len > m.max_seq_len)
      fail(ErrorKind::Range, "pagedAttention: seqLens[", s, "] = ", len, " is above maxSeqLen ", m.max_seq_len);
    if (m.max_query_len >= 0 && q_len > m.max_query_len)
      fail(ErrorKind::Range, "pagedAttention: sequence ", s, " has ", q_len, " query tokens, above maxQueryLen ",
           m.max_query_len);
    for (int64_t b = 0; b < (len + block_size - 1) / block_size; ++b) {
      const int32_t id = tables[s * width + b];
      if (id < 0 || id >= num_blocks)
        fail(ErrorKind::Range, "pagedAttention: blockTables[", s, ", ", b, "] = ", id,
             " is outside [0, numBlocks = ", num_blocks, ")");
    }
  }
}

}  // namespace mvllm
