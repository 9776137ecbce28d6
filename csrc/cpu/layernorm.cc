// RMSNorm (of rows, or of each head of each row) and fused residual-add + RMSNorm on the CPU, fp32 math.
#include <cmath>

#include "dispatch.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

// Rows per task: ~64K elements, so a task outweighs waking a thread (a few microseconds).
int64_t row_grain(int64_t hidden) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, hidden)); }

// Σ x² of a row, read once from memory (vload_stream)
template <typename T>
float sum_squares(const T* x, int64_t n) {
  constexpr int N = Vec::N;
  Vec a0 = vset1(0.f), a1 = vset1(0.f);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    Vec v0 = vload_stream(x + i), v1 = vload_stream(x + i + N);
    a0 = vfma(v0, v0, a0);
    a1 = vfma(v1, v1, a1);
  }
  for (; i + N <= n; i += N) {
    Vec v = vload(x + i);
    a0 = vfma(v, v, a0);
  }
  float s = vsum(a0 + a1);
  for (; i < n; ++i) {
    float v = to_float(x[i]);
    s += v * v;
  }
  return s;
}

// out[i] = T(T(x[i] * inv) * w[i]): the normalised value is rounded to the storage type before the weight,
// as vLLM does.
template <typename T>
void scale_row(T* out, const T* x, const T* w, float inv, int64_t n, bool stream) {
  constexpr int N = Vec::N;
  const Vec vinv = vset1(inv);
  int64_t i = 0;
  if (stream && stream_aligned(out) && (n % N) == 0) {
    for (; i < n; i += N) vstream(out + i, vround_to<T>(vload(x + i) * vinv) * vload(w + i));
    return;
  }
  for (; i + N <= n; i += N) vstore(out + i, vround_to<T>(vload(x + i) * vinv) * vload(w + i));
  for (; i < n; ++i) out[i] = from_float<T>(round_to<T>(to_float(x[i]) * inv) * to_float(w[i]));
}

// Rows are (token, head) pairs: row r is head r % heads of token r / heads (heads = 1 for rmsNorm).
template <typename T>
void rms_norm_impl(T* out, int64_t os0, int64_t os1, const T* x, int64_t xs0, int64_t xs1, const T* w, int64_t tokens,
                   int64_t heads, int64_t hidden, float eps) {
  const int64_t rows = tokens * heads;
  const bool stream = rows * hidden * int64_t(sizeof(T)) >= kStreamBytes;
  parallel_for(rows, row_grain(hidden), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r / heads, h = r % heads;
      const T* xr = x + t * xs0 + h * xs1;
      float inv = 1.0f / std::sqrt(sum_squares(xr, hidden) / float(hidden) + eps);
      scale_row(out + t * os0 + h * os1, xr, w, inv, hidden, stream);
    }
  });
  stream_fence();
}

template <typename T>
void fused_add_rms_norm_impl(const TensorView& x, const TensorView& residual, const TensorView& weight, float eps) {
  constexpr int N = Vec::N;
  const int64_t rows = x.size(0), hidden = x.size(1);
  const int64_t xs = x.stride(0), rs = residual.stride(0);
  const T* w = weight.ptr<T>();
  parallel_for(rows, row_grain(hidden), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* xr = x.ptr<T>() + r * xs;
      T* rr = residual.ptr<T>() + r * rs;
      // residual = T(x + residual); the sum of squares is taken of the rounded sum
      Vec a = vset1(0.f);
      int64_t i = 0;
      for (; i + N <= hidden; i += N) {
        Vec z = vround_to<T>(vload_stream(xr + i) + vload_stream(rr + i));
        vstore(rr + i, z);
        a = vfma(z, z, a);
      }
      float s = vsum(a);
      for (; i < hidden; ++i) {
        float z = round_to<T>(to_float(xr[i]) + to_float(rr[i]));
        rr[i] = from_float<T>(z);
        s += z * z;
      }
      float inv = 1.0f / std::sqrt(s / float(hidden) + eps);
      // x is both read (through residual) and written here, so no streaming: the row is in L1 anyway.
      i = 0;
      const Vec vinv = vset1(inv);
      for (; i + N <= hidden; i += N) vstore(xr + i, vround_to<T>(vload(rr + i) * vinv) * vload(w + i));
      for (; i < hidden; ++i) xr[i] = from_float<T>(round_to<T>(to_float(rr[i]) * inv) * to_float(w[i]));
    }
  });
}

}  // namespace

void rms_norm(const TensorView& out, const TensorView& x, const TensorView& weight, double eps) {
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, T,
                           rms_norm_impl<T>(out.ptr<T>(), out.stride(0), 0, x.ptr<T>(), x.stride(0), 0, weight.ptr<T>(),
                                            x.size(0), 1, x.size(1), float(eps)));
}

void rms_norm_heads(const TensorView& out, const TensorView& x, const TensorView& weight, double eps) {
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, T,
                           rms_norm_impl<T>(out.ptr<T>(), out.stride(0), out.stride(1), x.ptr<T>(), x.stride(0),
                                            x.stride(1), weight.ptr<T>(), x.size(0), x.size(1), x.size(2), float(eps)));
}

void fused_add_rms_norm(const TensorView& x, const TensorView& residual, const TensorView& weight, double eps) {
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, T, fused_add_rms_norm_impl<T>(x, residual, weight, float(eps)));
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
