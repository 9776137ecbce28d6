// The contract of every op, checked once for both backends before any kernel runs.
#pragma once

#include <cmath>

#include "attention_checks.h"
#include "check.h"
#include "moe_checks.h"
#include "packed_checks.h"
#include "quant_checks.h"

namespace mvllm {

// Two [numTokens, hidden] tensors of one float dtype and device (rows may be strided), and a dense [hidden]
// weight of the same dtype: what both RMSNorm ops take.
inline void check_norm_args(const Check& c, const TensorView& a, const char* an, const TensorView& b, const char* bn,
                            const TensorView& weight, double eps) {
  c.float_dtype(b, bn);
  c.same_dtype(a, an, b, bn);
  c.same_dtype(weight, "weight", b, bn);
  c.same_device(a, an, b, bn);
  c.same_device(weight, "weight", b, bn);
  c.ndim(b, bn, 2, "[numTokens, hidden]");
  c.ndim(a, an, 2, "[numTokens, hidden]");
  c.ndim(weight, "weight", 1, "[hidden]");
  c.dim(a, an, 0, b.size(0), "numTokens");
  c.dim(a, an, 1, b.size(1), "hidden");
  c.dim(weight, "weight", 0, b.size(1), "hidden");
  c.rows_dense(a, an);
  c.rows_dense(b, bn);
  c.contiguous(weight, "weight");
  c.positive_finite(eps, "eps");
}

inline void check_rms_norm(const TensorView& out, const TensorView& x, const TensorView& weight, double eps) {
  const Check c("rmsNorm");
  check_norm_args(c, out, "out", x, "x", weight, eps);
  c.same_or_distinct(out, "out", x, "x");  // in place is fine; a shifted view of x is not
}

// x, out: [numTokens, numHeads, headDim] (token and head strides free, heads dense); weight: [headDim]. Each head of
// each token is normalised on its own: Qwen3's and Gemma 3's q/k norms over the heads of a fused qkv buffer.
inline void check_rms_norm_heads(const TensorView& out, const TensorView& x, const TensorView& weight, double eps) {
  const Check c("rmsNormHeads");
  c.float_dtype(x, "x");
  c.same_dtype(out, "out", x, "x");
  c.same_dtype(weight, "weight", x, "x");
  c.same_device(out, "out", x, "x");
  c.same_device(weight, "weight", x, "x");
  c.ndim(x, "x", 3, "[numTokens, numHeads, headDim]");
  c.ndim(out, "out", 3, "[numTokens, numHeads, headDim]");
  c.ndim(weight, "weight", 1, "[headDim]");
  c.dim(out, "out", 0, x.size(0), "numTokens");
  c.dim(out, "out", 1, x.size(1), "numHeads");
  c.dim(out, "out", 2, x.size(2), "headDim");
  c.dim(weight, "weight", 0, x.size(2), "headDim");
  c.rows_dense(out, "out");
  c.rows_dense(x, "x");
  c.contiguous(weight, "weight");
  c.positive_finite(eps, "eps");
  c.same_or_distinct(out, "out", x, "x");
}

inline void check_fused_add_rms_norm(const TensorView& x, const TensorView& residual, const TensorView& weight,
                                     double eps) {
  const Check c("fusedAddRmsNorm");
  check_norm_args(c, residual, "residual", x, "x", weight, eps);
  c.distinct(x, "x", residual, "residual");
}

// positions: int32 [numTokens]; query: [numTokens, numHeads * headSize]; key: [numTokens, numKvHeads * headSize] or
// none (data == nullptr); cos_sin_cache: [maxPosition, rotaryDim], cos half then sin half.
inline void check_rotary_embedding(const TensorView& positions, const TensorView& query, const MaybeTensor& key,
                                   double head_size, const TensorView& cache, bool is_neox) {
  const Check c("rotaryEmbedding");
  c.dtype(positions, "positions", DType::Int32);
  c.float_dtype(query, "query");
  c.float_dtype(cache, "cosSinCache");
  if (cache.dtype != DType::Float32 && cache.dtype != query.dtype)
    fail(ErrorKind::Type, "rotaryEmbedding: cosSinCache dtype must be float32 or the query dtype (",
         dtype_name(query.dtype), "), got ", dtype_name(cache.dtype));
  c.same_device(positions, "positions", query, "query");
  c.same_device(cache, "cosSinCache", query, "query");
  c.ndim(positions, "positions", 1, "[numTokens]");
  c.ndim(query, "query", 2, "[numTokens, numHeads * headSize]");
  c.ndim(cache, "cosSinCache", 2, "[maxPosition, rotaryDim]");
  c.contiguous(positions, "positions");
  c.contiguous(cache, "cosSinCache");
  c.rows_dense(query, "query");
  if (!(head_size >= 1 && head_size <= (1 << 20)) || head_size != double(int64_t(head_size)))
    fail(ErrorKind::Range, "rotaryEmbedding: headSize must be a positive integer, got ", head_size);
  const int64_t hs = int64_t(head_size);
  c.dim(positions, "positions", 0, query.size(0), "numTokens of query");
  if (query.size(1) % hs != 0)
    fail(ErrorKind::Range, "rotaryEmbedding: query width ", query.size(1), " is not a multiple of headSize ", hs);
  const int64_t rot = cache.size(1);
  if (rot < 2 || rot % 2 != 0 || rot > hs)
    fail(ErrorKind::Range, "rotaryEmbedding: cosSinCache rotaryDim (dim 1) must be even and in [2, headSize = ", hs,
         "], got ", rot);
  if (cache.size(0) < 1) fail(ErrorKind::Range, "rotaryEmbedding: cosSinCache must have at least one position row");
  if (key.data) {
    c.same_dtype(key, "key", query, "query");
    c.same_device(key, "key", query, "query");
    c.ndim(key, "key", 2, "[numTokens, numKvHeads * headSize]");
    c.rows_dense(key, "key");
    c.dim(key, "key", 0, query.size(0), "numTokens of query");
    if (key.size(1) % hs != 0)
      fail(ErrorKind::Range, "rotaryEmbedding: key width ", key.size(1), " is not a multiple of headSize ", hs);
    c.distinct(key, "key", query, "query");
  }
}

// A gated activation's arguments: out [numTokens, d], x [numTokens, 2d] (gate half, then up half).
inline void check_gated_activation(const char* op, const TensorView& out, const TensorView& x) {
  const Check c(op);
  c.float_dtype(x, "x");
  c.same_dtype(out, "out", x, "x");
  c.same_device(out, "out", x, "x");
  c.ndim(x, "x", 2, "[numTokens, 2 * d]");
  c.ndim(out, "out", 2, "[numTokens, d]");
  if (x.size(1) % 2 != 0) fail(ErrorKind::Range, op, ": x last dim must be even (2 * d), got ", x.size(1));
  c.dim(out, "out", 0, x.size(0), "numTokens of x");
  c.dim(out, "out", 1, x.size(1) / 2, "half of x's last dim");
  c.rows_dense(x, "x");
  c.rows_dense(out, "out");
  c.distinct(out, "out", x, "x");  // the kernels read x's two halves while they write out (__restrict__)
}

inline void check_silu_and_mul(const TensorView& out, const TensorView& x) {
  check_gated_activation("siluAndMul", out, x);
}

inline void check_gelu_tanh_and_mul(const TensorView& out, const TensorView& x) {
  check_gated_activation("geluTanhAndMul", out, x);
}

// ---- linear, embedding, elementwise ----

// out = x · weightᵀ (+ bias). x, out: [numTokens, in] / [numTokens, out] (rows may be strided);
// weight: dense [outFeatures, inFeatures], any float dtype; bias: [outFeatures] in out's dtype, or data == null.
inline void check_linear(const TensorView& out, const TensorView& x, const TensorView& weight,
                         const MaybeTensor& bias) {
  const Check c("linear");
  c.linear_x_out(out, x);
  c.float_dtype(weight, "weight");
  c.same_device(weight, "weight", x, "x");
  c.ndim(weight, "weight", 2, "[outFeatures, inFeatures]");
  c.dim(weight, "weight", 1, x.size(1), "inFeatures of x");
  c.contiguous(weight, "weight");
  c.dim(out, "out", 1, weight.size(0), "outFeatures of weight");
  c.linear_bias(bias, out, x, weight.size(0));
  c.distinct(out, "out", x, "x");
}

// out[i] = table[indices[i]]: out [n, hidden], table [rows, hidden] (rows may be strided), indices int32 [n].
// The names are what the op calls its index and table tensors (embedding: ids, table; gatherRows: indices, x).
inline void check_row_gather(const Check& c, const TensorView& out, const TensorView& indices, const char* index_name,
                             const TensorView& table, const char* table_name) {
  c.float_dtype(table, table_name);
  c.same_dtype(out, "out", table, table_name);
  c.same_device(out, "out", table, table_name);
  c.same_device(indices, index_name, table, table_name);
  c.dtype(indices, index_name, DType::Int32);
  c.ndim(indices, index_name, 1, "[n]");
  c.contiguous(indices, index_name);
  c.ndim(table, table_name, 2, "[rows, hidden]");
  c.ndim(out, "out", 2, "[n, hidden]");
  c.dim(out, "out", 0, indices.size(0), "one row per index");
  c.dim(out, "out", 1, table.size(1), "hidden");
  c.rows_dense(out, "out");
  c.rows_dense(table, table_name);
  c.distinct(out, "out", table, table_name);
}

// out: [numTokens, hidden], written; ids: int32 [numTokens]; table: [vocabSize, hidden]
inline void check_embedding(const TensorView& out, const TensorView& ids, const TensorView& table) {
  check_row_gather(Check("embedding"), out, ids, "ids", table, "table");
}

// out: [n, hidden], written; x: [numTokens, hidden]; indices: int32 [n]
inline void check_gather_rows(const TensorView& out, const TensorView& x, const TensorView& indices) {
  check_row_gather(Check("gatherRows"), out, indices, "indices", x, "x");
}

// logits: [numRows, vocab] of any float dtype, written in place (strided rows fine); bitmask: int32
// [n, ceil(vocab / 32)], bit j of word w allows token 32w + j (xgrammar's layout); rows: int32 [n], the logits row each
// mask row applies to, each in [0, numRows).
inline void check_apply_token_bitmask(const TensorView& logits, const TensorView& bitmask, const TensorView& rows) {
  const Check c("applyTokenBitmask");
  c.float_dtype(logits, "logits");
  c.ndim(logits, "logits", 2, "[numRows, vocab]");
  c.rows_dense(logits, "logits");
  c.dtype(bitmask, "bitmask", DType::Int32);
  c.same_device(bitmask, "bitmask", logits, "logits");
  c.ndim(bitmask, "bitmask", 2, "[n, ceil(vocab / 32)]");
  c.dim(bitmask, "bitmask", 1, (logits.size(1) + 31) / 32, "ceil(vocab / 32) words of logits' vocab");
  c.contiguous(bitmask, "bitmask");
  c.dtype(rows, "rows", DType::Int32);
  c.same_device(rows, "rows", logits, "logits");
  c.ndim(rows, "rows", 1, "[n]");
  c.dim(rows, "rows", 0, bitmask.size(0), "one logits row per bitmask row");
  c.contiguous(rows, "rows");
}

// out and x: [numTokens, d] of one float dtype and device, rows dense (strided rows fine), out x itself or apart.
inline void check_elementwise(const Check& c, const TensorView& out, const TensorView& x) {
  c.float_dtype(x, "x");
  c.same_dtype(out, "out", x, "x");
  c.same_device(out, "out", x, "x");
  c.ndim(x, "x", 2, "[numTokens, d]");
  c.ndim(out, "out", 2, "[numTokens, d]");
  c.dim(out, "out", 0, x.size(0), "numTokens of x");
  c.dim(out, "out", 1, x.size(1), "d of x");
  c.rows_dense(x, "x");
  c.rows_dense(out, "out");
  c.same_or_distinct(out, "out", x, "x");
}

inline void check_scale(const TensorView& out, const TensorView& x, double factor) {
  const Check c("scale");
  check_elementwise(c, out, x);
  if (!std::isfinite(factor)) fail(ErrorKind::Range, "scale: factor must be a finite number, got ", factor);
}

inline void check_soft_cap(const TensorView& out, const TensorView& x, double cap) {
  const Check c("softCap");
  check_elementwise(c, out, x);
  c.positive_finite(cap, "cap");
}

// out = a + b, all [numTokens, hidden] of one dtype (rows may be strided); out may be a or b.
inline void check_add_args(const Check& c, const TensorView& out, const TensorView& a, const TensorView& b) {
  c.float_dtype(a, "a");
  c.same_dtype(b, "b", a, "a");
  c.same_dtype(out, "out", a, "a");
  c.same_device(b, "b", a, "a");
  c.same_device(out, "out", a, "a");
  c.ndim(a, "a", 2, "[numTokens, hidden]");
  c.ndim(b, "b", 2, "[numTokens, hidden]");
  c.ndim(out, "out", 2, "[numTokens, hidden]");
  for (int d = 0; d < 2; ++d) {
    c.dim(b, "b", d, a.size(d), "the shape of a");
    c.dim(out, "out", d, a.size(d), "the shape of a");
  }
  c.rows_dense(a, "a");
  c.rows_dense(b, "b");
  c.rows_dense(out, "out");
  c.same_or_distinct(out, "out", a, "a");
  c.same_or_distinct(out, "out", b, "b");
}

inline void check_add(const TensorView& out, const TensorView& a, const TensorView& b) {
  check_add_args(Check("add"), out, a, b);
}

// out = a + sigmoid(gate) · b (Qwen2-MoE's gated shared expert): add's arguments, and gate [numTokens, 1] of a's dtype
// and device.
inline void check_sigmoid_gated_add(const TensorView& out, const TensorView& a, const TensorView& b,
                                    const TensorView& gate) {
  const Check c("sigmoidGatedAdd");
  check_add_args(c, out, a, b);
  c.same_dtype(gate, "gate", a, "a");
  c.same_device(gate, "gate", a, "a");
  c.ndim(gate, "gate", 2, "[numTokens, 1]");
  c.dim(gate, "gate", 0, a.size(0), "numTokens of a");
  c.dim(gate, "gate", 1, 1, "1");
}

// t: any shape, contiguous, float; low < high, both finite; seed: a uint32.
inline void check_fill_uniform(const TensorView& t, double low, double high, double seed) {
  const Check c("fillUniform");
  c.float_dtype(t, "out");
  c.contiguous(t, "out");
  if (!(std::isfinite(low) && std::isfinite(high) && low < high))
    fail(ErrorKind::Range, "fillUniform: need finite low < high, got low = ", low, ", high = ", high);
  if (!(seed >= 0 && seed <= 4294967295.0) || seed != double(int64_t(seed)))
    fail(ErrorKind::Range, "fillUniform: seed must be an integer in [0, 2^32), got ", seed);
}

// ---- sampling (host arrays) ----

// sampleRows' per-row settings, each a host array of `rows` entries: temperature 0 = greedy; topK 0 = off; topP 1 =
// off; minP 0 = off; uniform in [0, 1) picks the token from the kept distribution.
struct SampleRowsParams {
  HostArray<const float> temperature;
  HostArray<const int32_t> top_k;
  HostArray<const float> top_p;
  HostArray<const float> min_p;
  HostArray<const double> uniform;
};

// logits: host float32 [rows, vocab]; out: int32 [rows], one token id per row.
inline void check_sample_rows(const HostArray<const float>& logits, double rows_d, double vocab_d,
                              const SampleRowsParams& p, const HostArray<int32_t>& out) {
  if (!(rows_d >= 0 && rows_d <= 1e6) || rows_d != double(int64_t(rows_d)))
    fail(ErrorKind::Range, "sampleRows: rows must be a non-negative integer, got ", rows_d);
  if (!(vocab_d >= 1 && vocab_d <= 2147483647.0) || vocab_d != double(int64_t(vocab_d)))
    fail(ErrorKind::Range, "sampleRows: vocab must be a positive integer, got ", vocab_d);
  const int64_t rows = int64_t(rows_d), vocab = int64_t(vocab_d);
  auto length = [](int64_t n, int64_t want, const char* name) {
    if (n != want) fail(ErrorKind::Range, "sampleRows: ", name, " has ", n, " elements, expected ", want);
  };
  length(logits.size, rows * vocab, "logits");
  length(p.temperature.size, rows, "params.temperature");
  length(p.top_k.size, rows, "params.topK");
  length(p.top_p.size, rows, "params.topP");
  length(p.min_p.size, rows, "params.minP");
  length(p.uniform.size, rows, "params.uniform");
  length(out.size, rows, "out");
  for (int64_t r = 0; r < rows; ++r) {
    const float t = p.temperature.data[r], top_p = p.top_p.data[r], min_p = p.min_p.data[r];
    const double u = p.uniform.data[r];
    if (!(t >= 0 && std::isfinite(t)))
      fail(ErrorKind::Range, "sampleRows: params.temperature[", r, "] = ", t, " must be >= 0");
    if (p.top_k.data[r] < 0)
      fail(ErrorKind::Range, "sampleRows: params.topK[", r, "] = ", p.top_k.data[r], " must be >= 0 (0 = off)");
    if (!(top_p > 0 && top_p <= 1))
      fail(ErrorKind::Range, "sampleRows: params.topP[", r, "] = ", top_p, " must be in (0, 1]");
    if (!(min_p >= 0 && min_p <= 1))
      fail(ErrorKind::Range, "sampleRows: params.minP[", r, "] = ", min_p, " must be in [0, 1]");
    if (!(u >= 0 && u < 1)) fail(ErrorKind::Range, "sampleRows: params.uniform[", r, "] = ", u, " must be in [0, 1)");
  }
  // !(v < +inf) is NaN or +inf: one branch-free pass the compiler vectorises, then the first such logit is found
  int bad = 0;
  for (int64_t i = 0; i < rows * vocab; ++i) bad |= !(logits.data[i] < INFINITY);
  for (int64_t i = 0; bad && i < rows * vocab; ++i)
    if (!(logits.data[i] < INFINITY))
      fail(ErrorKind::Range, "sampleRows: logits[", i / vocab, ", ", i % vocab, "] = ", logits.data[i],
           " (NaN or +Infinity)");
}

// ---- the op list ----

// Every op the addon exports, once: its JS name; its C++ name, which names its check (check_<name>, above) and its
// entry point in each backend (cpu::<name> in cpu/<family>.cc, cuda::<name> in cuda/<family>.cu); the backends that
// run it; and its arguments' names in the order JS passes them (lib/ops/<family>.ts declares the same, and the
// registry test holds the two to each other). binding/ops.cc registers every row.
#define MVLLM_FOR_EACH_OP(OP)                                                                                       \
  OP(rmsNorm, rms_norm, CPU_CUDA, "out", "x", "weight", "eps")                                                      \
  OP(fusedAddRmsNorm, fused_add_rms_norm, CPU_CUDA, "x", "residual", "weight", "eps")                               \
  OP(rmsNormHeads, rms_norm_heads, CPU_CUDA, "out", "x", "weight", "eps")                                           \
  OP(rotaryEmbedding, rotary_embedding, CPU_CUDA, "positions", "query", "key", "headSize", "cosSinCache", "isNeox") \
  OP(siluAndMul, silu_and_mul, CPU_CUDA, "out", "x")                                                                \
  OP(geluTanhAndMul, gelu_tanh_and_mul, CPU_CUDA, "out", "x")                                                       \
  OP(reshapeAndCache, reshape_and_cache, CPU_CUDA, "key", "value", "keyCache", "valueCache", "slotMapping")         \
  OP(pagedAttention, paged_attention, CPU_CUDA, "out", "query", "keyCache", "valueCache", "meta")                   \
  OP(linear, linear, CPU_CUDA, "out", "x", "weight", "bias")                                                        \
  OP(packLinearWeight, pack_linear_weight, CPU, "packed", "weight")                                                 \
  OP(linearPacked, linear_packed, CPU, "out", "x", "packed", "bias")                                                \
  OP(embedding, embedding, CPU_CUDA, "out", "ids", "table")                                                         \
  OP(embeddingPacked, embedding_packed, CPU, "out", "ids", "table", "vocabSize")                                    \
  OP(gatherRows, gather_rows, CPU_CUDA, "out", "x", "indices")                                                      \
  OP(applyTokenBitmask, apply_token_bitmask, CPU_CUDA, "logits", "bitmask", "rows")                                 \
  OP(add, add, CPU_CUDA, "out", "a", "b")                                                                           \
  OP(sigmoidGatedAdd, sigmoid_gated_add, CPU_CUDA, "out", "a", "b", "gate")                                         \
  OP(scale, scale, CPU_CUDA, "out", "x", "factor")                                                                  \
  OP(softCap, soft_cap, CPU_CUDA, "out", "x", "cap")                                                                \
  OP(fillUniform, fill_uniform, CPU_CUDA, "out", "low", "high", "seed")                                             \
  OP(sampleRows, sample_rows, CPU, "logits", "rows", "vocab", "params", "out")                                      \
  OP(quantLinear, quant_linear, CPU_CUDA, "out", "x", "weight", "type", "bias")                                     \
  OP(packQuantWeight, pack_quant_weight, CPU, "packed", "weight", "type")                                           \
  OP(quantLinearPacked, quant_linear_packed, CPU, "out", "x", "packed", "type", "bias")                             \
  OP(quantEmbedding, quant_embedding, CPU_CUDA, "out", "ids", "table", "type")                                      \
  OP(quantEmbeddingPacked, quant_embedding_packed, CPU, "out", "ids", "table", "type")                              \
  OP(fusedMoe, fused_moe, CPU_CUDA, "out", "x", "routerLogits", "w13", "w2", "topK", "renormalize")                 \
  OP(quantFusedMoe, quant_fused_moe, CPU_CUDA, "out", "x", "routerLogits", "w13", "w2", "type13", "type2", "topK",  \
     "renormalize")                                                                                                 \
  OP(quantFusedMoePacked, quant_fused_moe_packed, CPU, "out", "x", "routerLogits", "w13", "w2", "type13", "type2",  \
     "topK", "renormalize")

// Each backend's entry point of an op takes exactly its check's arguments: declared here from the check's type, so
// the CPU and CUDA entry points of one op cannot drift apart. The CPU's are declared in the level being compiled
// (cpu/level.h); code outside the levels reaches them through cpu/isa.h's table.
#ifdef MVLLM_CPU_LEVEL
#define MVLLM_DECLARE_CPU_ENTRY_POINT(name) \
  namespace cpu {                           \
  inline namespace MVLLM_CPU_LEVEL {        \
  decltype(check_##name) name;              \
  }                                         \
  }
#else
#define MVLLM_DECLARE_CPU_ENTRY_POINT(name)
#endif
#define MVLLM_DECLARE_ENTRY_POINTS(js_name, name, ...) \
  MVLLM_DECLARE_CPU_ENTRY_POINT(name)                  \
  namespace cuda {                                     \
  decltype(check_##name) name;                         \
  }
MVLLM_FOR_EACH_OP(MVLLM_DECLARE_ENTRY_POINTS)
#undef MVLLM_DECLARE_ENTRY_POINTS
#undef MVLLM_DECLARE_CPU_ENTRY_POINT

}  // namespace mvllm
