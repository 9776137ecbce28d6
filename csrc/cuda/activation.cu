// The gated activations: out = T(T(act(x[:, :d])) * x[:, d:]), act SiLU (siluAndMul) or GELU with the tanh
// approximation (geluTanhAndMul), one block per token, 16-byte packs when aligned.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

struct Silu {
  __device__ __forceinline__ static float f(float x) { return x / (1.0f + expf(-x)); }
};
struct GeluTanh {
  __device__ __forceinline__ static float f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  }
};

// grid: numTokens, block: min(1024, d / V rounded up to a warp)
template <typename Act, typename T, int V>
__global__ void act_and_mul_kernel(T* __restrict__ out, int64_t out_stride,    // [numTokens, d]
                                   const T* __restrict__ x, int64_t x_stride,  // [numTokens, 2d]
                                   int d) {
  using P = Pack<T, V>;
  const P* g = reinterpret_cast<const P*>(x + blockIdx.x * x_stride);
  const P* u = reinterpret_cast<const P*>(x + blockIdx.x * x_stride + d);
  P* o = reinterpret_cast<P*>(out + blockIdx.x * out_stride);
  for (int i = threadIdx.x; i < d / V; i += blockDim.x) {
    P a = g[i], b = u[i], r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = from_f<T>(round_to<T>(Act::f(to_f(a.v[j]))) * to_f(b.v[j]));
    o[i] = r;
  }
}

}  // namespace

namespace {

template <typename Act>
void act_and_mul(const TensorView& out, const TensorView& x, const char* op) {
  const int64_t tokens = out.size(0), d = out.size(1);
  cudaStream_t st = stream(out.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(out.dtype, T, {
    constexpr int V = 16 / int(sizeof(T));
    const bool vec =
        d % V == 0 && x.stride(0) % V == 0 && out.stride(0) % V == 0 && aligned16(x.data) && aligned16(out.data);
    const int64_t packs = vec ? d / V : d;
    const int threads = int(std::min<int64_t>(1024, std::max<int64_t>(32, ((packs + 31) / 32) * 32)));
    if (vec)
      MVLLM_LAUNCH(unsigned(tokens), threads, 0, st, act_and_mul_kernel<Act, T, V>)(out.ptr<T>(), out.stride(0),
                                                                                    x.ptr<T>(), x.stride(0), int(d));
    else
      MVLLM_LAUNCH(unsigned(tokens), threads, 0, st, act_and_mul_kernel<Act, T, 1>)(out.ptr<T>(), out.stride(0),
                                                                                    x.ptr<T>(), x.stride(0), int(d));
  });
  check_launch(op);
}

}  // namespace

void silu_and_mul(const TensorView& out, const TensorView& x) { act_and_mul<Silu>(out, x, "siluAndMul"); }

void gelu_tanh_and_mul(const TensorView& out, const TensorView& x) { act_and_mul<GeluTanh>(out, x, "geluTanhAndMul"); }

}  // namespace mvllm::cuda
