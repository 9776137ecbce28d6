// The token embedding on CUDA: out[i] = table[ids[i]], a row gather (gather_rows.cu).
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {

void embedding(const TensorView& out, const TensorView& ids, const TensorView& table) {
  copy_rows(out, ids, table, "embedding");
}

}  // namespace mvllm::cuda
