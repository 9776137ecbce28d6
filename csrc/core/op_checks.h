// The contract of every op, checked once for both backends before any kernel runs.
#pragma once

#include "check.h"

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
  check_norm_args(Check("rmsNorm"), out, "out", x, "x", weight, eps);
}

inline void check_fused_add_rms_norm(const TensorView& x, const TensorView& residual, const TensorView& weight,
                                     double eps) {
  const Check c("fusedAddRmsNorm");
  check_norm_args(c, residual, "residual", x, "x", weight, eps);
  c.distinct(x, "x", residual, "residual");
}

// key.data == nullptr means no key.
inline void check_rotary_embedding(const TensorView& positions, const TensorView& query, const TensorView& key,
                                   double head_size, const TensorView& cache) {
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

inline void check_silu_and_mul(const TensorView& out, const TensorView& x) {
  const Check c("siluAndMul");
  c.float_dtype(x, "x");
  c.same_dtype(out, "out", x, "x");
  c.same_device(out, "out", x, "x");
  c.ndim(x, "x", 2, "[numTokens, 2 * d]");
  c.ndim(out, "out", 2, "[numTokens, d]");
  if (x.size(1) % 2 != 0) fail(ErrorKind::Range, "siluAndMul: x last dim must be even (2 * d), got ", x.size(1));
  c.dim(out, "out", 0, x.size(0), "numTokens of x");
  c.dim(out, "out", 1, x.size(1) / 2, "half of x's last dim");
  c.rows_dense(x, "x");
  c.rows_dense(out, "out");
}

}  // namespace mvllm
