// The contract of the quantised ops (quantLinear, quantEmbedding), checked once for both backends: op_checks.h
// includes it before its op list.
#pragma once

#include "check.h"
#include "quant.h"

namespace mvllm {

// A quantised weight: int32 [rows, rowWords], each row the ggml blocks of `cols` values of type `type`, padded to
// whole words (quant.h). Returns the type's format.
inline QuantFormat check_quant_weight(const Check& c, const char* op, const TensorView& w, const char* name,
                                      double type, int64_t cols, const char* cols_what,
                                      const char* type_name = "type") {
  QuantFormat f{};
  if (type != double(int64_t(type)) || !quant_format(int64_t(type), &f))
    fail(ErrorKind::Range, op, ": ", type_name,
         " must be a ggml quantised type id (Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, ",
         "Q4_K 12, Q5_K 13, Q6_K 14), got ", type);
  c.dtype(w, name, DType::Int32);
  c.ndim(w, name, 2, "[rows, rowWords]");
  if (cols % f.block != 0)
    fail(ErrorKind::Range, op, ": ", cols_what, " = ", cols, " is not a multiple of ", f.name, "'s block of ", f.block);
  c.dim(w, name, 1, quant_row_words(f, cols), "words of a padded row of quantised blocks");
  c.rows_dense(w, name);
  return f;
}

// out = x · dequant(weight)ᵀ (+ bias): x, out [numTokens, in] / [numTokens, out] (rows may be strided); weight a
// quantised [outFeatures, rowWords] (check_quant_weight); bias [outFeatures] in out's dtype, or data == null.
inline void check_quant_linear(const TensorView& out, const TensorView& x, const TensorView& weight, double type,
                               const MaybeTensor& bias) {
  const Check c("quantLinear");
  c.linear_x_out(out, x);
  c.same_device(weight, "weight", x, "x");
  check_quant_weight(c, "quantLinear", weight, "weight", type, x.size(1), "inFeatures");
  c.dim(out, "out", 1, weight.size(0), "outFeatures of weight");
  c.linear_bias(bias, out, x, weight.size(0));
  c.distinct(out, "out", x, "x");
}

// The CPU's interleaved layout of a quantised weight (cpu/quant_x8_layout.h): the types it has one for (Q4_0, Q8_0,
// Q4_K, Q6_K), rows in groups of 8, the tensor dense. Returns the type's format.
inline QuantFormat check_interleaved(const Check& c, const char* op, const TensorView& w, const char* name,
                                     double type) {
  if (type != double(kQ4_0) && type != double(kQ8_0) && type != double(kQ4_K) && type != double(kQ6_K))
    fail(ErrorKind::Range, op, ": type must be a type the CPU interleaves (Q4_0 2, Q8_0 8, Q4_K 12, Q6_K 14), got ",
         type);
  QuantFormat f{};
  quant_format(int64_t(type), &f);
  if (w.size(0) % 8 != 0)
    fail(ErrorKind::Range, op, ": ", name, " has ", w.size(0),
         " rows, not a multiple of 8 (rows are interleaved by 8)");
  c.contiguous(w, name);
  return f;
}

// packed = weight's rows interleaved by 8 (cpu/quant_x8_layout.h): both int32 [rows, rowWords], rows a multiple of 8.
inline void check_pack_quant_weight(const TensorView& packed, const TensorView& weight, double type) {
  const Check c("packQuantWeight");
  c.dtype(weight, "weight", DType::Int32);
  c.ndim(weight, "weight", 2, "[rows, rowWords]");
  const QuantFormat f = check_interleaved(c, "packQuantWeight", weight, "weight", type);
  const int64_t blocks = weight.size(1) * 4 / f.bytes;  // the words' whole blocks (a row pads at most 3 bytes)
  c.dim(weight, "weight", 1, quant_row_words(f, blocks * f.block), "words of a padded row of quantised blocks");
  c.dtype(packed, "packed", DType::Int32);
  c.same_device(packed, "packed", weight, "weight");
  c.ndim(packed, "packed", 2, "[rows, rowWords]");
  c.dim(packed, "packed", 0, weight.size(0), "rows of weight");
  c.dim(packed, "packed", 1, weight.size(1), "rowWords of weight");
  c.contiguous(packed, "packed");
  c.distinct(packed, "packed", weight, "weight");
}

// quantLinear over a weight packQuantWeight interleaved: the same contract, the weight's rows a multiple of 8.
inline void check_quant_linear_packed(const TensorView& out, const TensorView& x, const TensorView& packed, double type,
                                      const MaybeTensor& bias) {
  const Check c("quantLinearPacked");
  c.linear_x_out(out, x);
  c.same_device(packed, "packed", x, "x");
  check_quant_weight(c, "quantLinearPacked", packed, "packed", type, x.size(1), "inFeatures");
  check_interleaved(c, "quantLinearPacked", packed, "packed", type);
  c.dim(out, "out", 1, packed.size(0), "outFeatures of packed");
  c.linear_bias(bias, out, x, packed.size(0));
  c.distinct(out, "out", x, "x");
}

// out[i] = dequant(table[ids[i]]): out [numTokens, hidden] float, ids int32 [numTokens], table a quantised
// [vocab, rowWords] of rows of `hidden` values. An id outside the table is a RangeError (on CUDA at the next
// synchronize, the row zero-filled).
inline void check_quant_embedding_as(const char* op, const TensorView& out, const TensorView& ids,
                                     const TensorView& table, double type) {
  const Check c(op);
  c.float_dtype(out, "out");
  c.same_device(ids, "ids", out, "out");
  c.same_device(table, "table", out, "out");
  c.ids_out(ids, out);
  check_quant_weight(c, op, table, "table", type, out.size(1), "hidden");
}
inline void check_quant_embedding(const TensorView& out, const TensorView& ids, const TensorView& table, double type) {
  check_quant_embedding_as("quantEmbedding", out, ids, table, type);
}

// quantEmbedding over a table packQuantWeight interleaved: the same contract, the table's rows a multiple of 8.
inline void check_quant_embedding_packed(const TensorView& out, const TensorView& ids, const TensorView& table,
                                         double type) {
  check_quant_embedding_as("quantEmbeddingPacked", out, ids, table, type);
  check_interleaved(Check("quantEmbeddingPacked"), "quantEmbeddingPacked", table, "table", type);
}

}  // namespace mvllm
