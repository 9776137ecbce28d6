// CPU twins of the CUDA kernels. Arguments are already checked (core/ops.h); these only compute.
#pragma once

#include "../core/op_checks.h"
#include "../core/tensor.h"

namespace mvllm::cpu {

// out, x: [numTokens, hidden] (rows may be strided); weight: [hidden]
void rms_norm(const TensorView& out, const TensorView& x, const TensorView& weight, float eps);
// in place: residual = x + residual; x = rmsNorm(residual)
void fused_add_rms_norm(const TensorView& x, const TensorView& residual, const TensorView& weight, float eps);
// positions: [numTokens] int32; query: [numTokens, numHeads*headSize]; key: same with numKvHeads or data == null;
// cos_sin_cache: [maxPosition, rotaryDim] (cos half, then sin half)
void rotary_embedding(const TensorView& positions, const TensorView& query, const TensorView& key, int64_t head_size,
                      const TensorView& cos_sin_cache, bool is_neox);
// x: [numTokens, 2d]; out: [numTokens, d]
void silu_and_mul(const TensorView& out, const TensorView& x);

// key, value: [numTokens, numKvHeads, headSize] (heads may be strided); caches: [numBlocks, blockSize,
// numKvHeads, headSize]; slot_mapping: int32 [numTokens], negative = padding. Throws RangeError on a slot past
// the pool before writing anything.
void reshape_and_cache(const TensorView& key, const TensorView& value, const TensorView& key_cache,
                       const TensorView& value_cache, const TensorView& slot_mapping);
// out, query: [numTokens, numHeads, headSize]; caches as above; meta checked by check_attention_meta_values.
void paged_attention(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                     const TensorView& value_cache, const AttentionMeta& meta);
// out = x · weightᵀ (+ bias): x [numTokens, in], weight [outFeatures, in] (any float dtype), out [numTokens, outF].
void linear(const TensorView& out, const TensorView& x, const TensorView& weight, const TensorView& bias);
// out[i] = table[indices[i]]; throws RangeError (naming `op` and `index_name`) on an index outside the table.
void gather_rows(const char* op, const TensorView& out, const TensorView& indices, const char* index_name,
                 const TensorView& table);
// out = a + b (out may alias a or b)
void add(const TensorView& out, const TensorView& a, const TensorView& b);
// Runs independent FMAs on every thread for about `seconds`; returns GFLOP/s (the benchmarks' compute peak).
double fma_peak(double seconds);

// Per-row sampling settings (already validated): temperature 0 = greedy; top_k 0 = off; top_p 1 = off; min_p 0 = off;
// uniform in [0, 1) picks the token from the kept distribution.
struct SampleParams {
  float temperature;
  int32_t top_k;
  float top_p;
  float min_p;
  double uniform;
};
// logits: host float32 [rows, vocab]; out: one token id per row.
void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SampleParams* params, int32_t* out);

// Elementwise copy between CPU tensors of one shape, any strides, converting between float dtypes
// (int32 only to int32). Host arrays take part by being wrapped in a TensorView.
void copy(const TensorView& dst, const TensorView& src);
void fill(const TensorView& t, double value);
// t (contiguous, float): t[i] = uniform_at(seed, i, low, high) (core/random.h), the same values as CUDA writes.
void fill_uniform(const TensorView& t, float low, float high, uint32_t seed);
// Sums every element (float32 only): the STREAM-like read that benchmarks compare against.
double stream_read(const TensorView& t);

}  // namespace mvllm::cpu
