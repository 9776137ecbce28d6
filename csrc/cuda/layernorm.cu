// RMSNorm and fused residual-add + RMSNorm: one block per token, fp32 sums, 16-byte packs when aligned.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

// grid: numTokens, block: threads striding over the row in packs of V elements (hidden % V == 0)
// out and x may alias (in-place use), so neither is __restrict__.
template <typename T, int V>
__global__ void rms_norm_kernel(T* out, int64_t out_stride,    // [numTokens, hidden]
                                const T* x, int64_t x_stride,  // [numTokens, hidden]
                                const T* __restrict__ weight,  // [hidden]
                                float eps, int hidden) {
  using P = Pack<T, V>;
  const P* xr = reinterpret_cast<const P*>(x + blockIdx.x * x_stride);
  P* orow = reinterpret_cast<P*>(out + blockIdx.x * out_stride);
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

void rms_norm(const TensorView& out, const TensorView& x, const TensorView& weight, double eps_d) {
  const int64_t tokens = x.size(0), hidden = x.size(1);
  const float eps = float(eps_d);
  cudaStream_t st = stream(x.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(x.dtype, T, {
    constexpr int V = pack_of<T>();
    const bool vec = hidden % V == 0 && x.stride(0) % V == 0 && out.stride(0) % V == 0 && aligned16(x.data) &&
                     aligned16(out.data) && aligned16(weight.data);
    if (vec)
      MVLLM_LAUNCH(unsigned(tokens), threads_for(hidden / V), 0, st, rms_norm_kernel<T, V>)(
          out.ptr<T>(), out.stride(0), x.ptr<T>(), x.stride(0), weight.ptr<T>(), eps, int(hidden));
    else
      MVLLM_LAUNCH(unsigned(tokens), threads_for(hidden), 0, st, rms_norm_kernel<T, 1>)(
          out.ptr<T>(), out.stride(0), x.ptr<T>(), x.stride(0), weight.ptr<T>(), eps, int(hidden));
  });
  check_launch("rmsNorm");
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
