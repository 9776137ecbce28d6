// CPU twins of the CUDA kernels. Arguments are already checked (core/ops.h); these only compute.
#pragma once

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

// Elementwise copy between CPU tensors of one shape, any strides, converting between float dtypes
// (int32 only to int32). Host arrays take part by being wrapped in a TensorView.
void copy(const TensorView& dst, const TensorView& src);
void fill(const TensorView& t, double value);
// Sums every element (float32 only): the STREAM-like read that benchmarks compare against.
double stream_read(const TensorView& t);

}  // namespace mvllm::cpu
