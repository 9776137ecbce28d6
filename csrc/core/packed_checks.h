// The contract of the CPU's packed float weight (packLinearWeight, linearPacked, embeddingPacked), checked once:
// op_checks.h includes it before its op list.
#pragma once

#include "check.h"

namespace mvllm {

// The CPU's packed linear weight, streamed in order with no transpose per call: dense [numPanels, inFeatures, 16],
// packed[p][k][j] = weight[16p + j][k], zero past outFeatures; any float dtype.
inline void check_pack_linear_weight(const TensorView& packed, const TensorView& weight) {
  const Check c("packLinearWeight");
  c.float_dtype(weight, "weight");
  c.same_dtype(packed, "packed", weight, "weight");
  c.same_device(packed, "packed", weight, "weight");
  c.ndim(weight, "weight", 2, "[outFeatures, inFeatures]");
  c.ndim(packed, "packed", 3, "[numPanels, inFeatures, 16]");
  c.dim(packed, "packed", 0, (weight.size(0) + 15) / 16, "numPanels = ceil(outFeatures / 16)");
  c.dim(packed, "packed", 1, weight.size(1), "inFeatures of weight");
  c.dim(packed, "packed", 2, 16, "the panel's 16 features");
  c.contiguous(weight, "weight");
  c.contiguous(packed, "packed");
  c.distinct(packed, "packed", weight, "weight");
}

// out = x · weightᵀ (+ bias) with the weight packed (check_pack_linear_weight); as check_linear otherwise.
inline void check_linear_packed(const TensorView& out, const TensorView& x, const TensorView& packed,
                                const MaybeTensor& bias) {
  const Check c("linearPacked");
  c.linear_x_out(out, x);
  c.float_dtype(packed, "packed");
  c.same_device(packed, "packed", x, "x");
  c.ndim(packed, "packed", 3, "[numPanels, inFeatures, 16]");
  c.dim(packed, "packed", 1, x.size(1), "inFeatures of x");
  c.dim(packed, "packed", 2, 16, "the panel's 16 features");
  c.dim(packed, "packed", 0, (out.size(1) + 15) / 16, "numPanels = ceil(outFeatures of out / 16)");
  c.contiguous(packed, "packed");
  c.linear_bias(bias, out, x, out.size(1));
  c.distinct(out, "out", x, "x");
}

// out[i] = row ids[i] of a table packed by packLinearWeight (a tied embedding, which the classifier reads as
// linearPacked): out [numTokens, hidden] of the table's dtype (rows may be strided), ids int32 [numTokens] in
// [0, vocabSize), table [ceil(vocabSize / 16), hidden, 16].
inline void check_embedding_packed(const TensorView& out, const TensorView& ids, const TensorView& table,
                                   double vocab_size) {
  const Check c("embeddingPacked");
  if (vocab_size != double(int64_t(vocab_size)) || vocab_size < 1)
    fail(ErrorKind::Range, "embeddingPacked: vocabSize must be a positive integer, got ", vocab_size);
  c.float_dtype(table, "table");
  c.same_dtype(out, "out", table, "table");
  c.same_device(out, "out", table, "table");
  c.same_device(ids, "ids", table, "table");
  c.ids_out(ids, out);
  c.ndim(table, "table", 3, "[numPanels, hidden, 16]");
  c.dim(table, "table", 0, (int64_t(vocab_size) + 15) / 16, "numPanels = ceil(vocabSize / 16)");
  c.dim(table, "table", 2, 16, "the panel's 16 rows");
  c.contiguous(table, "table");
  c.dim(out, "out", 1, table.size(1), "hidden of table");
  c.distinct(out, "out", table, "table");
}

}  // namespace mvllm
