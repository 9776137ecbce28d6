// The token embedding on the CPU: out[i] = table[ids[i]], a row gather (gather_rows.cc) naming its own arguments; and
// the same rows from a table packed by packLinearWeight (a tied embedding the classifier reads as linearPacked).
#include <algorithm>
#include <cstring>

#include "../core/op_checks.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

void embedding(const TensorView& out, const TensorView& ids, const TensorView& table) {
  copy_rows("embedding", out, ids, "ids", table);
}

namespace {
// dst[k] = src[16 k]: one item of each cache line (fp32). Kept scalar: the AVX-512 build's auto-vectorised form (whole
// lines loaded, then permuted) ran 4-6% slower than the AVX2 build's on the op benchmark.
template <typename T>
__attribute__((noinline, optimize("no-tree-vectorize"))) void copy_strided(T* dst, const T* src, int64_t n) {
  for (int64_t k = 0; k < n; ++k) dst[k] = src[k * 16];
}

// Row `id` of the packed table: element k at table[id / 16][k][id % 16], 16 items apart. T: the item's bits.
template <typename T>
void packed_rows(const TensorView& out, const int32_t* idx, const TensorView& table) {
  const int64_t n = out.size(0), hidden = table.size(1);
  const T* t = static_cast<const T*>(table.data);
  parallel_for(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, hidden)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T* src = t + (int64_t(idx[i]) / 16) * hidden * 16 + idx[i] % 16;
      T* dst = static_cast<T*>(out.data) + i * out.stride(0);
      copy_strided(dst, src, hidden);
    }
  });
}
}  // namespace

void embedding_packed(const TensorView& out, const TensorView& ids, const TensorView& table, double vocab_size) {
  const int32_t* idx = ids.ptr<int32_t>();
  for (int64_t i = 0; i < ids.size(0); ++i)
    if (idx[i] < 0 || idx[i] >= int64_t(vocab_size))
      fail(ErrorKind::Range, "embeddingPacked: ids[", i, "] = ", idx[i], " is outside [0, ", int64_t(vocab_size), ")");
  if (table.itemsize() == 4)
    packed_rows<uint32_t>(out, idx, table);
  else
    packed_rows<uint16_t>(out, idx, table);
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
