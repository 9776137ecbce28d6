// Elementwise maps of a [numTokens, d] tensor: scale (Gemma's embedding times √hidden) and the soft cap
// cap·tanh(x / cap) (Gemma 2's final logits); one block per row, 16-byte packs when aligned, fp32 math.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

struct Scale {
  float a;
  __device__ __forceinline__ float operator()(float x) const { return x * a; }
};
struct SoftCap {
  float cap;
  __device__ __forceinline__ float operator()(float x) const { return cap * tanhf(x / cap); }
};

// grid: numTokens, block: 256 threads over the row in packs of V. out may be x (in place).
template <typename T, int V, typename F>
__global__ void map_kernel(T* out, int64_t out_stride, const T* x, int64_t x_stride, int d, F f) {
  using P = Pack<T, V>;
  const P* xr = reinterpret_cast<const P*>(x + blockIdx.x * x_stride);
  P* o = reinterpret_cast<P*>(out + blockIdx.x * out_stride);
  for (int i = threadIdx.x; i < d / V; i += blockDim.x) {
    P a = xr[i], r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = from_f<T>(f(to_f(a.v[j])));
    o[i] = r;
  }
}

template <typename F>
void map_rows(const TensorView& out, const TensorView& x, F f, const char* op) {
  const int64_t tokens = x.size(0), d = x.size(1);
  cudaStream_t st = stream(x.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(x.dtype, T, {
    constexpr int V = 16 / int(sizeof(T));
    const bool vec =
        d % V == 0 && x.stride(0) % V == 0 && out.stride(0) % V == 0 && aligned16(x.data) && aligned16(out.data);
    if (vec)
      MVLLM_LAUNCH(unsigned(tokens), 256, 0, st, map_kernel<T, V, F>)(out.ptr<T>(), out.stride(0), x.ptr<T>(),
                                                                      x.stride(0), int(d), f);
    else
      MVLLM_LAUNCH(unsigned(tokens), 256, 0, st, map_kernel<T, 1, F>)(out.ptr<T>(), out.stride(0), x.ptr<T>(),
                                                                      x.stride(0), int(d), f);
  });
  check_launch(op);
}

}  // namespace

void scale(const TensorView& out, const TensorView& x, double factor) {
  map_rows(out, x, Scale{float(factor)}, "scale");
}

void soft_cap(const TensorView& out, const TensorView& x, double cap) {
  map_rows(out, x, SoftCap{float(cap)}, "softCap");
}

}  // namespace mvllm::cuda
