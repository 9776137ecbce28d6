// Elementwise maps of a [numTokens, d] tensor on the CPU, fp32 math: scale (Gemma's embedding times √hidden) and the
// soft cap cap·tanh(x / cap) (Gemma 2's final logits).
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

// tanh(z) = (e^2z - 1) / (e^2z + 1), with a true division: tanh(0) is 0 and ±1 is reached exactly; near 0 the error is
// absolute, that of e^2z (a couple of fp32 ulps of 1), which is what logits need. The exponent is clamped to ±44 (tanh
// is ±1 to fp32 long before).
inline Vec vtanh(Vec z) {
  const Vec e = vexp(vmax(vset1(-44.0f), vmin(vset1(44.0f), z + z)));
  return (e - vset1(1.0f)) / (e + vset1(1.0f));
}

struct Scale {
  float a;
  Vec v(Vec x) const { return x * vset1(a); }
  float s(float x) const { return x * a; }
};
struct SoftCap {
  float cap;
  Vec v(Vec x) const { return vset1(cap) * vtanh(x * vset1(1.0f / cap)); }
  float s(float x) const { return cap * std::tanh(x / cap); }
};

template <typename T, typename F>
void map_rows(const TensorView& out, const TensorView& x, const F& f) {
  const int64_t rows = x.size(0), d = x.size(1);
  parallel_for(rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, d)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x.ptr<T>() + r * x.stride(0);
      T* o = out.ptr<T>() + r * out.stride(0);
      int64_t i = 0;
      for (; i + Vec::N <= d; i += Vec::N) vstore(o + i, f.v(vload(xr + i)));
      for (; i < d; ++i) o[i] = from_float<T>(f.s(to_float(xr[i])));
    }
  });
}

}  // namespace

void scale(const TensorView& out, const TensorView& x, double factor) {
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, T, map_rows<T>(out, x, Scale{float(factor)}));
}

void soft_cap(const TensorView& out, const TensorView& x, double cap) {
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, T, map_rows<T>(out, x, SoftCap{float(cap)}));
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
