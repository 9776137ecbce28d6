// The gated activations of the MLP on the CPU, fp32 math: SiLU-and-multiply (SwiGLU, Llama's) and
// GELU(tanh)-and-multiply (GeGLU, Gemma's).
#include <cmath>

#include "dispatch.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

// silu(g) = g / (1 + e^-g). The exponent is capped at 88 so 1 + e^-g stays finite for the reciprocal; below
// g = -88 silu is below 1e-36 in magnitude either way. NaN propagates (vmax returns its 2nd operand on NaN).
inline Vec vsilu(Vec g) {
  Vec e = vexp(vset1(0.f) - vmax(vset1(-88.0f), g));
  return g * vrcp(vset1(1.0f) + e);
}

// gelu_tanh(g) = g/2 (1 + tanh(z)), z = sqrt(2/pi) (g + 0.044715 g^3): since (1 + tanh z) / 2 is the logistic of 2z,
// g / (1 + e^-2z), with the exponent capped as vsilu caps it.
inline Vec vgelu_tanh(Vec g) {
  const Vec z = vset1(0.7978845608028654f) * (g + vset1(0.044715f) * g * g * g);
  Vec e = vexp(vset1(0.f) - vmax(vset1(-88.0f), z + z));
  return g * vrcp(vset1(1.0f) + e);
}

struct Silu {
  static Vec v(Vec g) { return vsilu(g); }
  static float s(float x) { return x / (1.0f + std::exp(-x)); }
};
struct GeluTanh {
  static Vec v(Vec g) { return vgelu_tanh(g); }
  static float s(float x) { return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x))); }
};

// out = T(T(act(g)) * u), rounding where vLLM rounds: the activation's result is cast to the storage type first.
template <typename Act, typename T>
void act_mul_span(T* out, const T* g, const T* u, int64_t n, bool stream) {
  constexpr int N = Vec::N;
  int64_t i = 0;
  if (stream && stream_aligned(out) && (n % N) == 0) {
    for (; i < n; i += N) vstream(out + i, vround_to<T>(Act::v(vload(g + i))) * vload(u + i));
    return;
  }
  for (; i + N <= n; i += N) vstore(out + i, vround_to<T>(Act::v(vload(g + i))) * vload(u + i));
  for (; i < n; ++i) out[i] = from_float<T>(round_to<T>(Act::s(to_float(g[i]))) * to_float(u[i]));
}

template <typename Act, typename T>
void act_and_mul_impl(const TensorView& out, const TensorView& x) {
  const int64_t rows = out.size(0), d = out.size(1);
  // Split rows into chunks too, so one long row (a decode step) still uses every thread.
  const int64_t chunk = d <= 4096 ? d : 4096;
  const int64_t per_row = (d + chunk - 1) / chunk;
  const bool stream = rows * d * int64_t(sizeof(T)) >= kStreamBytes;
  parallel_for(rows * per_row, std::max<int64_t>(1, 65536 / chunk), [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t r = w / per_row, c0 = (w % per_row) * chunk, n = std::min(chunk, d - c0);
      const T* xr = x.ptr<T>() + r * x.stride(0);
      act_mul_span<Act>(out.ptr<T>() + r * out.stride(0) + c0, xr + c0, xr + d + c0, n, stream);
    }
  });
  stream_fence();
}

}  // namespace

void silu_and_mul(const TensorView& out, const TensorView& x) {
  MVLLM_CPU_DISPATCH_FLOAT(out.dtype, T, act_and_mul_impl<Silu, T>(out, x));
}

void gelu_tanh_and_mul(const TensorView& out, const TensorView& x) {
  MVLLM_CPU_DISPATCH_FLOAT(out.dtype, T, act_and_mul_impl<GeluTanh, T>(out, x));
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
