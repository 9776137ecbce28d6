// Elementwise add (a residual connection outside the fused RMSNorm): out = T(a + b), and with a sigmoid gate per row
// (Qwen2-MoE's shared expert): out = T(a + sigmoid(gate) · b); one block per token, fp32 math.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

// grid: numTokens, block: 256 threads over the row in packs of V
// gate: null (plain add) or [numTokens] at gate_stride, b's weight sigmoid(gate[t])
template <typename T, int V>
__global__ void add_kernel(T* out, int64_t out_stride, const T* a, int64_t a_stride, const T* b, int64_t b_stride,
                           const T* gate, int64_t gate_stride, int d) {
  using P = Pack<T, V>;
  const P* ar = reinterpret_cast<const P*>(a + blockIdx.x * a_stride);
  const P* br = reinterpret_cast<const P*>(b + blockIdx.x * b_stride);
  P* o = reinterpret_cast<P*>(out + blockIdx.x * out_stride);
  const float g = gate ? 1.0f / (1.0f + expf(-to_f(gate[blockIdx.x * gate_stride]))) : 1.0f;
  for (int i = threadIdx.x; i < d / V; i += blockDim.x) {
    P x = ar[i], y = br[i], r;
#pragma unroll
    for (int j = 0; j < V; ++j)
      r.v[j] = from_f<T>(gate ? to_f(x.v[j]) + g * to_f(y.v[j]) : to_f(x.v[j]) + to_f(y.v[j]));
    o[i] = r;
  }
}

void add_rows(const TensorView& out, const TensorView& a, const TensorView& b, const TensorView* gate, const char* op) {
  const int64_t tokens = a.size(0), d = a.size(1);
  cudaStream_t st = stream(a.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(a.dtype, T, {
    constexpr int V = 16 / int(sizeof(T));
    const bool vec = d % V == 0 && a.stride(0) % V == 0 && b.stride(0) % V == 0 && out.stride(0) % V == 0 &&
                     aligned16(a.data) && aligned16(b.data) && aligned16(out.data);
    const T* g = gate ? gate->ptr<T>() : nullptr;
    const int64_t gs = gate ? gate->stride(0) : 0;
    if (vec)
      MVLLM_LAUNCH(unsigned(tokens), 256, 0, st, add_kernel<T, V>)(out.ptr<T>(), out.stride(0), a.ptr<T>(), a.stride(0),
                                                                   b.ptr<T>(), b.stride(0), g, gs, int(d));
    else
      MVLLM_LAUNCH(unsigned(tokens), 256, 0, st, add_kernel<T, 1>)(out.ptr<T>(), out.stride(0), a.ptr<T>(), a.stride(0),
                                                                   b.ptr<T>(), b.stride(0), g, gs, int(d));
  });
  check_launch(op);
}

}  // namespace

void add(const TensorView& out, const TensorView& a, const TensorView& b) { add_rows(out, a, b, nullptr, "add"); }

void sigmoid_gated_add(const TensorView& out, const TensorView& a, const TensorView& b, const TensorView& gate) {
  add_rows(out, a, b, &gate, "sigmoidGatedAdd");
}

}  // namespace mvllm::cuda
