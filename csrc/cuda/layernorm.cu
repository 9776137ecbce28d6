// RMSNorm (of rows, or of each head of each row) and fused residual-add + RMSNorm: one block per row, fp32 sums,
// 16-byte packs when aligned.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

// grid: numTokens * heads (row r: head r % heads of token r / heads; heads = 1 for rmsNorm), block: threads striding
// over the row in packs of V elements (hidden % V == 0). out and x may alias (in-place use), so neither is
// __restrict__.
template <typename T, int V>
__global__ void rms_norm_kernel(T* out, int64_t out_s0, int64_t out_s1,  // [numTokens, heads, hidden]
                                const T* x, int64_t x_s0, int64_t x_s1,  // [numTokens, heads, hidden]
                                const T* __restrict__ weight,            // [hidden]
                                float eps, int heads, int hidden) {
  using P = Pack<T, V>;
  const int64_t t = blockIdx.x / unsigned(heads), h = blockIdx.x % unsigned(heads);
  const P* xr = reinterpret_cast<const P*>(x + t * x_s0 + h * x_s1);
  P* orow = reinterpret_cast<P*>(out + t * out_s0 + h * out_s1);
  const P* w = reinterpret_cast<const P*>(weight);
  const int packs = hidden / V;

  float ss = 0.f;
  for (int i = threadIdx.x; i < packs; i += blockDim.x) {
    P p = xr[i];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float f = to_f(p.v[j]);
      ss += f * f;
    }
  }
  const float inv = rsqrtf(block_sum(ss) / float(hidden) + eps);

  for (int i = threadIdx.x; i < packs; i += blockDim.x) {
    P p = xr[i], q = w[i], o;
#pragma unroll
    for (int j = 0; j < V; ++j) o.v[j] = from_f<T>(round_to<T>(to_f(p.v[j]) * inv) * to_f(q.v[j]));
    orow[i] = o;
  }
}

// grid: numTokens, block: as rms_norm_kernel. residual = T(x + residual); x = rmsNorm(residual).
template <typename T, int V>
__global__ void fused_add_rms_norm_kernel(T* __restrict__ x, int64_t x_stride,                // [numTokens, hidden]
                                          T* __restrict__ residual, int64_t residual_stride,  // [numTokens, hidden]
                                          const T* __restrict__ weight,                       // [hidden]
                                          float eps, int hidden) {
  using P = Pack<T, V>;
  P* xr = reinterpret_cast<P*>(x + blockIdx.x * x_stride);
  P* rr = reinterpret_cast<P*>(residual + blockIdx.x * residual_stride);
  const P* w = reinterpret_cast<const P*>(weight);
  const int packs = hidden / V;

  float ss = 0.f;
  for (int i = threadIdx.x; i < packs; i += blockDim.x) {
    P a = xr[i], b = rr[i], z;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      z.v[j] = from_f<T>(to_f(a.v[j]) + to_f(b.v[j]));
      float f = to_f(z.v[j]);
      ss += f * f;
    }
    rr[i] = z;
  }
  const float inv = rsqrtf(block_sum(ss) / float(hidden) + eps);

  // NOTE: each thread re-reads only the residual packs it wrote itself, so no barrier is needed here.
  for (int i = threadIdx.x; i < packs; i += blockDim.x) {
    P z = rr[i], q = w[i], o;
#pragma unroll
    for (int j = 0; j < V; ++j) o.v[j] = from_f<T>(round_to<T>(to_f(z.v[j]) * inv) * to_f(q.v[j]));
    xr[i] = o;
  }
}

int threads_for(int64_t packs) {
  int64_t t = ((packs + 31) / 32) * 32;
  return int(t < 32 ? 32 : (t > 1024 ? 1024 : t));
}

template <typename T>
constexpr int pack_of() {
  return 16 / int(sizeof(T));
}

}  // namespace

namespace {

// out, x: [tokens, heads, hidden] with strides (s0, s1); heads = 1 and s1 = 0 for rmsNorm.
void launch_rms_norm(const TensorView& out, int64_t os0, int64_t os1, const TensorView& x, int64_t xs0, int64_t xs1,
                     const TensorView& weight, int64_t tokens, int64_t heads, int64_t hidden, float eps,
                     const char* op) {
  if (tokens * heads > int64_t(INT32_MAX))
    fail(ErrorKind::Range, op, ": numTokens * numHeads (", tokens * heads, ") must be at most 2^31 - 1 on CUDA");
  cudaStream_t st = stream(x.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(x.dtype, T, {
    constexpr int V = pack_of<T>();
    const bool vec = hidden % V == 0 && xs0 % V == 0 && os0 % V == 0 && xs1 % V == 0 && os1 % V == 0 &&
                     aligned16(x.data) && aligned16(out.data) && aligned16(weight.data);
    if (vec)
      MVLLM_LAUNCH(unsigned(tokens * heads), threads_for(hidden / V), 0, st, rms_norm_kernel<T, V>)(
          out.ptr<T>(), os0, os1, x.ptr<T>(), xs0, xs1, weight.ptr<T>(), eps, int(heads), int(hidden));
    else
      MVLLM_LAUNCH(unsigned(tokens * heads), threads_for(hidden), 0, st, rms_norm_kernel<T, 1>)(
          out.ptr<T>(), os0, os1, x.ptr<T>(), xs0, xs1, weight.ptr<T>(), eps, int(heads), int(hidden));
  });
  check_launch(op);
}

}  // namespace

void rms_norm(const TensorView& out, const TensorView& x, const TensorView& weight, double eps) {
  launch_rms_norm(out, out.stride(0), 0, x, x.stride(0), 0, weight, x.size(0), 1, x.size(1), float(eps), "rmsNorm");
}

void rms_norm_heads(const TensorView& out, const TensorView& x, const TensorView& weight, double eps) {
  launch_rms_norm(out, out.stride(0), out.stride(1), x, x.stride(0), x.stride(1), weight, x.size(0), x.size(1),
                  x.size(2), float(eps), "rmsNormHeads");
}

void fused_add_rms_norm(const TensorView& x, const TensorView& residual, const TensorView& weight, double eps_d) {
  const int64_t tokens = x.size(0), hidden = x.size(1);
  const float eps = float(eps_d);
  cudaStream_t st = stream(x.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(x.dtype, T, {
    constexpr int V = pack_of<T>();
    const bool vec = hidden % V == 0 && x.stride(0) % V == 0 && residual.stride(0) % V == 0 && aligned16(x.data) &&
                     aligned16(residual.data) && aligned16(weight.data);
    if (vec)
      MVLLM_LAUNCH(unsigned(tokens), threads_for(hidden / V), 0, st, fused_add_rms_norm_kernel<T, V>)(
          x.ptr<T>(), x.stride(0), residual.ptr<T>(), residual.stride(0), weight.ptr<T>(), eps, int(hidden));
    else
      MVLLM_LAUNCH(unsigned(tokens), threads_for(hidden), 0, st, fused_add_rms_norm_kernel<T, 1>)(
          x.ptr<T>(), x.stride(0), residual.ptr<T>(), residual.stride(0), weight.ptr<T>(), eps, int(hidden));
  });
  check_launch("fusedAddRmsNorm");
}

}  // namespace mvllm::cuda
