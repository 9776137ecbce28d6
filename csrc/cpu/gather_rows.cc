// Row gathers on the CPU: out[i] = table[indices[i]], rows copied as they are (one dtype). gatherRows picks each
// sequence's last token before the logits; the token embedding (embedding.cc) is the same copy.
#include <cstring>

#include "../core/op_checks.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

void copy_rows(const char* op, const TensorView& out, const TensorView& indices, const char* index_name,
               const TensorView& table) {
  const int64_t n = indices.size(0), rows = table.size(0), hidden = table.size(1);
  const int32_t* idx = indices.ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= rows)
      fail(ErrorKind::Range, op, ": ", index_name, "[", i, "] = ", idx[i], " is outside [0, ", rows, ")");
  const size_t item = table.itemsize(), row_bytes = size_t(hidden) * item;
  parallel_for(n, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, hidden)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      std::memcpy(static_cast<char*>(out.data) + i * out.stride(0) * item,
                  static_cast<const char*>(table.data) + idx[i] * table.stride(0) * item, row_bytes);
  });
}

void gather_rows(const TensorView& out, const TensorView& x, const TensorView& indices) {
  copy_rows("gatherRows", out, indices, "indices", x);
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
