// Elementwise add on the CPU (a residual connection outside the fused RMSNorm): out = T(a + b), and with a sigmoid gate
// per row (Qwen2-MoE's shared expert): out = T(a + sigmoid(gate) · b); fp32 math.
#include <cmath>

#include "../core/op_checks.h"
#include "dispatch.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

// gate: null (the plain add), or [numTokens, 1]: b's row t weighted by sigmoid(gate[t])
template <typename T>
void add_impl(const TensorView& out, const TensorView& a, const TensorView& b, const TensorView* gate = nullptr) {
  const int64_t rows = a.size(0), d = a.size(1);
  parallel_for(rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, d)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* ar = a.ptr<T>() + r * a.stride(0);
      const T* br = b.ptr<T>() + r * b.stride(0);
      T* o = out.ptr<T>() + r * out.stride(0);
      int64_t i = 0;
      if (!gate) {
        for (; i + Vec::N <= d; i += Vec::N) vstore(o + i, vload_stream(ar + i) + vload_stream(br + i));
        for (; i < d; ++i) o[i] = from_float<T>(to_float(ar[i]) + to_float(br[i]));
        continue;
      }
      const float g = 1.0f / (1.0f + std::exp(-to_float(gate->ptr<T>()[r * gate->stride(0)])));
      const Vec gv = vset1(g);
      for (; i + Vec::N <= d; i += Vec::N) vstore(o + i, vload(ar + i) + gv * vload(br + i));
      for (; i < d; ++i) o[i] = from_float<T>(to_float(ar[i]) + g * to_float(br[i]));
    }
  });
}

}  // namespace

void sigmoid_gated_add(const TensorView& out, const TensorView& a, const TensorView& b, const TensorView& gate) {
  MVLLM_CPU_DISPATCH_FLOAT(a.dtype, T, add_impl<T>(out, a, b, &gate));
}

void add(const TensorView& out, const TensorView& a, const TensorView& b) {
  MVLLM_CPU_DISPATCH_FLOAT(a.dtype, T, add_impl<T>(out, a, b));
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
