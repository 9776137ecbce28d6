// The token embedding on the CPU: out[i] = table[ids[i]], a row gather (gather_rows.cc) naming its own arguments.
#include "../core/op_checks.h"
#include "kernels.h"
#include "level.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

void embedding(const TensorView& out, const TensorView& ids, const TensorView& table) {
  copy_rows("embedding", out, ids, "ids", table);
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
