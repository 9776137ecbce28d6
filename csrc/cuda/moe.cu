// Mixture of Experts on CUDA, graph-safe (nothing leaves the device): route (one warp a token: softmax, top k,
// renormalised where asked), group the (token, expert) pairs by expert (one block: counts, offsets, positions), then
// for each expert a grouped GEMV over its pairs: gate and up rows together with SiLU-and-mul, then down; each weight
// row is read once per group of 4 of the expert's pairs. Each pair's result goes to its own fp32 row, and a last
// kernel adds a token's k rows, times their weights, in order (deterministic) and rounds once.
#include "../core/op_checks.h"
#include "../core/quant.h"
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

constexpr int kPairs = 4;  // pairs one pass over a weight row serves

// grid: tokens, block 32. ids/weights [tokens * k].
template <typename TR>
__global__ void route_kernel(const TR* __restrict__ logits, int64_t stride, int experts, int k, bool renormalize,
                             int32_t* __restrict__ ids, float* __restrict__ weights) {
  const int lane = threadIdx.x;
  const TR* row = logits + blockIdx.x * stride;
  constexpr int kPer = kMoeMaxExperts / 32;
  float p[kPer];
  float max = -INFINITY;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int e = lane + 32 * i;
    p[i] = e < experts ? to_f(row[e]) : -INFINITY;
    max = fmaxf(max, p[i]);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) max = fmaxf(max, __shfl_xor_sync(0xffffffffu, max, o));
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    p[i] = lane + 32 * i < experts ? expf(p[i] - max) : -1.f;
    sum += p[i] > 0.f ? p[i] : 0.f;
  }
  sum = warp_sum(sum);
  float picked = 0.f;
  for (int j = 0; j < k; ++j) {
    // the largest probability left, the lower expert id among equal ones
    float best = -0.5f;  // below every expert's probability, above the taken (-2) and absent (-1) ones
    int best_e = 0x7fffffff;
#pragma unroll
    for (int i = 0; i < kPer; ++i)
      if (p[i] > best || (p[i] == best && lane + 32 * i < best_e)) best = p[i], best_e = lane + 32 * i;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float b = __shfl_xor_sync(0xffffffffu, best, o);
      const int be = __shfl_xor_sync(0xffffffffu, best_e, o);
      if (b > best || (b == best && be < best_e)) best = b, best_e = be;
    }
    if (lane == (best_e & 31)) p[best_e >> 5] = -2.f;  // taken
    picked += best / sum;
    if (lane == 0) {
      ids[blockIdx.x * k + j] = best_e;
      weights[blockIdx.x * k + j] = best / sum;
    }
  }
  if (renormalize && lane == 0)
    for (int j = 0; j < k; ++j) weights[blockIdx.x * k + j] /= picked;
}

// grid 1, block 1024: start [experts + 1] and order [pairs] (pair ids grouped by expert).
__global__ void group_kernel(const int32_t* __restrict__ ids, int64_t pairs, int experts, int32_t* __restrict__ start,
                             int32_t* __restrict__ order) {
  __shared__ int32_t count[kMoeMaxExperts], fill[kMoeMaxExperts];
  for (int e = threadIdx.x; e < experts; e += blockDim.x) count[e] = 0, fill[e] = 0;
  __syncthreads();
  for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) atomicAdd(&count[ids[p]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t s = 0;
    for (int e = 0; e < experts; ++e) start[e] = s, s += count[e];
    start[experts] = s;
  }
  __syncthreads();
  for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) {
    const int e = ids[p];
    order[start[e] + atomicAdd(&fill[e], 1)] = int32_t(p);
  }
}

// Values [32 c, 32 c + 32) of a weight row, as fp32: a float row (the tail past `cols` zero) or a quantised one.
template <typename TW>
struct FloatRows {
  const TW* w;
  int64_t cols;
  __device__ __forceinline__ const void* row(int64_t r) const { return w + r * cols; }
  __device__ __forceinline__ void chunk(const void* row, int64_t c, float* y) const {
    const TW* p = static_cast<const TW*>(row) + c * 32;
    const int64_t n = cols - c * 32;
#pragma unroll
    for (int l = 0; l < 32; ++l) y[l] = l < n ? to_f(p[l]) : 0.f;
  }
};
struct QuantRows {
  const uint8_t* w;
  int64_t row_bytes;
  int type, per, bytes;
  __device__ __forceinline__ const void* row(int64_t r) const { return w + r * row_bytes; }
  __device__ __forceinline__ void chunk(const void* row, int64_t c, float* y) const {
    dequant_chunk(type, static_cast<const uint8_t*>(row) + (c / per) * bytes, int(c % per), y);
  }
};

// Dots of weight row `row` with up to kPairs rows of x (the pairs' inputs, rows x_rows[m]) over `cols` values; the
// warp's sum lands in acc[m] on every lane.
template <typename TA, typename W>
__device__ __forceinline__ void row_dots(const W& w, const void* row, int64_t cols, const TA* const* xs, int mt,
                                         float* acc) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int m = 0; m < kPairs; ++m) acc[m] = 0.f;
  for (int64_t c = lane; c * 32 < cols; c += 32) {
    float y[32];
    w.chunk(row, c, y);
    const int n = int(cols - c * 32 < 32 ? cols - c * 32 : 32);
#pragma unroll
    for (int m = 0; m < kPairs; ++m) {
      if (m >= mt) break;
      const TA* xm = xs[m] + c * 32;
      float s = 0.f;
      for (int l = 0; l < n; ++l) s += y[l] * to_f(xm[l]);
      acc[m] += s;
    }
  }
#pragma unroll
  for (int m = 0; m < kPairs; ++m) acc[m] = warp_sum(acc[m]);
}

// grid (experts, ceil(inter / 8)), block 256: warp w of block b makes act[pair][8 b + w] for every pair of expert
// blockIdx.x: T(T(silu(T(gate · x))) · T(up · x)), as linear then siluAndMul round.
template <typename TA, typename W>
__global__ void __launch_bounds__(256)
    gate_up_kernel(W w, const TA* __restrict__ x, int64_t x_stride, const int32_t* __restrict__ start,
                   const int32_t* __restrict__ order, int k, int64_t hidden, int64_t inter, TA* __restrict__ act) {
  const int e = blockIdx.x;
  const int64_t n = int64_t(blockIdx.y) * 8 + (threadIdx.x >> 5);
  if (n >= inter) return;
  const int32_t first = start[e], count = start[e + 1] - first;
  const void* gate = w.row(int64_t(e) * 2 * inter + n);
  const void* up = w.row(int64_t(e) * 2 * inter + inter + n);
  for (int32_t i0 = 0; i0 < count; i0 += kPairs) {
    const int mt = count - i0 < kPairs ? count - i0 : kPairs;
    const TA* xs[kPairs];
    int32_t pair[kPairs];
#pragma unroll
    for (int m = 0; m < kPairs; ++m) {
      pair[m] = order[first + i0 + (m < mt ? m : 0)];
      xs[m] = x + int64_t(pair[m] / k) * x_stride;
    }
    float g[kPairs], u[kPairs];
    row_dots<TA>(w, gate, hidden, xs, mt, g);
    row_dots<TA>(w, up, hidden, xs, mt, u);
    if ((threadIdx.x & 31) == 0)
      for (int m = 0; m < mt; ++m) {
        const float gr = round_to<TA>(g[m]);
        const float a = round_to<TA>(gr / (1.0f + expf(-gr)));
        act[int64_t(pair[m]) * inter + n] = from_f<TA>(a * round_to<TA>(u[m]));
      }
  }
}

// grid (experts, ceil(hidden / 8)), block 256: y[pair][n] = T(down row n · act[pair]) for every pair of the expert.
template <typename TA, typename W>
__global__ void __launch_bounds__(256)
    down_kernel(W w, const TA* __restrict__ act, const int32_t* __restrict__ start, const int32_t* __restrict__ order,
                int64_t hidden, int64_t inter, float* __restrict__ y) {
  const int e = blockIdx.x;
  const int64_t n = int64_t(blockIdx.y) * 8 + (threadIdx.x >> 5);
  if (n >= hidden) return;
  const int32_t first = start[e], count = start[e + 1] - first;
  const void* row = w.row(int64_t(e) * hidden + n);
  for (int32_t i0 = 0; i0 < count; i0 += kPairs) {
    const int mt = count - i0 < kPairs ? count - i0 : kPairs;
    const TA* xs[kPairs];
    int32_t pair[kPairs];
#pragma unroll
    for (int m = 0; m < kPairs; ++m) {
      pair[m] = order[first + i0 + (m < mt ? m : 0)];
      xs[m] = act + int64_t(pair[m]) * inter;
    }
    float s[kPairs];
    row_dots<TA>(w, row, inter, xs, mt, s);
    if ((threadIdx.x & 31) == 0)
      for (int m = 0; m < mt; ++m) y[int64_t(pair[m]) * hidden + n] = round_to<TA>(s[m]);
  }
}

// grid tokens, block 256: out[t] = T(Σ_j weights[t k + j] · y[t k + j]).
template <typename TA>
__global__ void combine_kernel(TA* __restrict__ out, int64_t out_stride, const float* __restrict__ y,
                               const float* __restrict__ weights, int k, int64_t hidden) {
  const int64_t t = blockIdx.x;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) {
    float s = 0.f;
    for (int j = 0; j < k; ++j) s += weights[t * k + j] * y[(t * k + j) * hidden + c];
    out[t * out_stride + c] = from_f<TA>(s);
  }
}

size_t aligned(size_t n) { return (n + 255) & ~size_t(255); }

template <typename TA, typename W>
void run_moe(const TensorView& out, const TensorView& x, const TensorView& router, const W& w13, const W& w2,
             int64_t inter, int k, bool renormalize, const char* op) {
  const int64_t tokens = x.size(0), hidden = x.size(1), experts = router.size(1), pairs = tokens * k;
  if (tokens == 0) return;
  if (tokens > 65535ll * 1024)
    fail(ErrorKind::Range, op, ": numTokens above ", 65535ll * 1024, " is not supported on CUDA");
  const size_t ids_b = aligned(pairs * 4), weights_b = aligned(pairs * 4), start_b = aligned((experts + 1) * 4),
               order_b = aligned(pairs * 4), act_b = aligned(pairs * inter * sizeof(TA)), y_b = pairs * hidden * 4;
  char* base = static_cast<char*>(scratch(x.device_index, ids_b + weights_b + start_b + order_b + act_b + y_b));
  int32_t* ids = reinterpret_cast<int32_t*>(base);
  float* weights = reinterpret_cast<float*>(base + ids_b);
  int32_t* start = reinterpret_cast<int32_t*>(base + ids_b + weights_b);
  int32_t* order = reinterpret_cast<int32_t*>(base + ids_b + weights_b + start_b);
  TA* act = reinterpret_cast<TA*>(base + ids_b + weights_b + start_b + order_b);
  float* y = reinterpret_cast<float*>(base + ids_b + weights_b + start_b + order_b + act_b);
  cudaStream_t st = stream(x.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(router.dtype, TR,
                            MVLLM_LAUNCH(unsigned(tokens), 32, 0, st, route_kernel<TR>)(
                                router.ptr<TR>(), router.stride(0), int(experts), k, renormalize, ids, weights));
  MVLLM_LAUNCH(1, 1024, 0, st, group_kernel)(ids, pairs, int(experts), start, order);
  MVLLM_LAUNCH(dim3(unsigned(experts), unsigned((inter + 7) / 8)), 256, 0, st, gate_up_kernel<TA, W>)(
      w13, x.ptr<TA>(), x.stride(0), start, order, k, hidden, inter, act);
  MVLLM_LAUNCH(dim3(unsigned(experts), unsigned((hidden + 7) / 8)), 256, 0, st, down_kernel<TA, W>)(
      w2, act, start, order, hidden, inter, y);
  MVLLM_LAUNCH(unsigned(tokens), 256, 0, st, combine_kernel<TA>)(out.ptr<TA>(), out.stride(0), y, weights, k, hidden);
  check_launch(op);
}

}  // namespace

void fused_moe(const TensorView& out, const TensorView& x, const TensorView& router, const TensorView& w13,
               const TensorView& w2, double top_k, bool renormalize) {
  const int64_t inter = w2.size(2), hidden = x.size(1);
  MVLLM_CUDA_DISPATCH_FLOAT(x.dtype, TA, MVLLM_CUDA_DISPATCH_FLOAT(w13.dtype, TW, {
                              const FloatRows<TW> a{w13.ptr<TW>(), hidden}, b{w2.ptr<TW>(), inter};
                              run_moe<TA>(out, x, router, a, b, inter, int(top_k), renormalize, "fusedMoe");
                            }));
}

void quant_fused_moe(const TensorView& out, const TensorView& x, const TensorView& router, const TensorView& w13,
                     const TensorView& w2, double type13, double type2, double top_k, bool renormalize) {
  QuantFormat f13{}, f2{};
  quant_format(int64_t(type13), &f13);
  quant_format(int64_t(type2), &f2);
  const int64_t inter = w13.size(0) / (2 * router.size(1));
  const QuantRows a{static_cast<const uint8_t*>(w13.data), w13.stride(0) * 4, int(type13), f13.block / 32, f13.bytes},
      b{static_cast<const uint8_t*>(w2.data), w2.stride(0) * 4, int(type2), f2.block / 32, f2.bytes};
  MVLLM_CUDA_DISPATCH_FLOAT(x.dtype, TA,
                            run_moe<TA>(out, x, router, a, b, inter, int(top_k), renormalize, "quantFusedMoe"));
}

}  // namespace mvllm::cuda
