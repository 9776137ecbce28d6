// Linear layers on CUDA: out = x · weightᵀ (+ bias), weight [outFeatures, inFeatures], fp32 accumulation.
//
//  - GEMV (<= 16 tokens, a decode step): one warp per output feature streams its weight row in 16-byte loads,
//    converted in registers, and dots it with every token's x; the weight is read once, at bandwidth.
//  - GEMM with tensor cores (x and weight both float16 or both bfloat16): 128 x 128 tiles, 8 warps, mma.sync
//    m16n8k16 from shared memory.
//  - GEMM on CUDA cores otherwise (float32, mixed dtypes, unaligned rows): 64 x 64 tiles, 4 x 4 per thread.
#include "api.h"
#include "common.cuh"
#include "ptx.cuh"

namespace mvllm::cuda {
namespace {

constexpr int kGemvMaxTokens = 16;

// grid: ceil(outFeatures / 8), block: 256 (8 warps, one output feature each)
template <typename TA, typename TW, int MT, int V>
__global__ void __launch_bounds__(256) gemv_kernel(TA* __restrict__ out, int64_t out_stride,    // [numTokens, outF]
                                                   const TA* __restrict__ x, int64_t x_stride,  // [numTokens, inF]
                                                   const TW* __restrict__ w,                    // [outF, inF]
                                                   const TA* __restrict__ bias,                 // [outF] or null
                                                   int tokens, int64_t out_f, int64_t in_f) {
  const int64_t n = int64_t(blockIdx.x) * 8 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (n >= out_f) return;
  using P = Pack<TW, V>;
  const P* wr = reinterpret_cast<const P*>(w + n * in_f);
  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.f;
  for (int64_t i = lane; i < in_f / V; i += 32) {
    const P p = wr[i];
    float wf[V];
#pragma unroll
    for (int j = 0; j < V; ++j) wf[j] = to_f(p.v[j]);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m < tokens) {
        const TA* xr = x + m * x_stride + i * V;
#pragma unroll
        for (int j = 0; j < V; ++j) acc[m] += wf[j] * to_f(xr[j]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    if (m >= tokens) break;
    const float v = warp_sum(acc[m]);
    if (lane == 0) out[m * out_stride + n] = from_f<TA>(v + (bias ? to_f(bias[n]) : 0.f));
  }
}

// grid: (ceil(outF / 64), ceil(numTokens / 64)), block: 256 (16 x 16 threads, 4 x 4 outputs each)
template <typename TA, typename TW>
__global__ void __launch_bounds__(256)
    gemm_simt_kernel(TA* __restrict__ out, int64_t out_stride, const TA* __restrict__ x, int64_t x_stride,
                     const TW* __restrict__ w, const TA* __restrict__ bias, int64_t tokens, int64_t out_f,
                     int64_t in_f) {
  constexpr int BM = 64, BN = 64, BK = 16;
  __shared__ float xs[BK][BM + 4];
  __shared__ float ws[BK][BN + 4];
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < in_f; k0 += BK) {
    // each thread loads 4 elements of each tile: row r = i / BK, k = i % BK (k fastest: coalesced along k)
    for (int i = threadIdx.x; i < BM * BK; i += 256) {
      const int r = i / BK, k = i % BK;
      const int64_t gm = m0 + r, gn = n0 + r, gk = k0 + k;
      xs[k][r] = (gm < tokens && gk < in_f) ? to_f(x[gm * x_stride + gk]) : 0.f;
      ws[k][r] = (gn < out_f && gk < in_f) ? to_f(w[gn * in_f + gk]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        a[i] = xs[k][ty * 4 + i];
        b[i] = ws[k][tx * 4 + i];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty * 4 + i;
    if (m >= tokens) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx * 4 + j;
      if (n < out_f) out[m * out_stride + n] = from_f<TA>(acc[i][j] + (bias ? to_f(bias[n]) : 0.f));
    }
  }
}

// ---- tensor cores ----

constexpr int kTileM = 128, kTileN = 128, kTileK = 32, kPad = 8;

// grid: (ceil(outF / 128), ceil(numTokens / 128)), block: 256 (8 warps: 2 along M x 4 along N, 64 x 32 each).
// Needs inFeatures, the row strides and both base pointers 16-byte aligned (8 elements).
template <typename T>
__global__ void __launch_bounds__(256)
    gemm_mma_kernel(T* __restrict__ out, int64_t out_stride, const T* __restrict__ x, int64_t x_stride,
                    const T* __restrict__ w, const T* __restrict__ bias, int64_t tokens, int64_t out_f, int64_t in_f) {
  __shared__ __align__(16) T xs[kTileM][kTileK + kPad];
  __shared__ __align__(16) T ws[kTileN][kTileK + kPad];
  const int64_t m0 = int64_t(blockIdx.y) * kTileM, n0 = int64_t(blockIdx.x) * kTileN;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;  // this warp's 64 x 32 piece of the tile
  const int g = lane >> 2, tq = lane & 3;
  float acc[4][4][4] = {};  // [m16 tile][n8 tile][fragment]

  for (int64_t k0 = 0; k0 < in_f; k0 += kTileK) {
    // 128 rows x 32 k = 512 16-byte chunks per operand: 2 per thread each
    for (int c = threadIdx.x; c < kTileM * kTileK / 8; c += 256) {
      const int r = c / (kTileK / 8), kc = (c % (kTileK / 8)) * 8;
      const int64_t gk = k0 + kc;
      uint4 xv = make_uint4(0, 0, 0, 0), wv = make_uint4(0, 0, 0, 0);
      // in_f % 8 == 0, so a chunk is either wholly inside or wholly past the row
      if (m0 + r < tokens && gk < in_f) xv = *reinterpret_cast<const uint4*>(x + (m0 + r) * x_stride + gk);
      if (n0 + r < out_f && gk < in_f) wv = *reinterpret_cast<const uint4*>(w + (n0 + r) * in_f + gk);
      *reinterpret_cast<uint4*>(&xs[r][kc]) = xv;
      *reinterpret_cast<uint4*>(&ws[r][kc]) = wv;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      uint32_t a[4][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int r = wm + i * 16 + g;
        a[i][0] = *reinterpret_cast<const uint32_t*>(&xs[r][kk + 2 * tq]);
        a[i][1] = *reinterpret_cast<const uint32_t*>(&xs[r + 8][kk + 2 * tq]);
        a[i][2] = *reinterpret_cast<const uint32_t*>(&xs[r][kk + 8 + 2 * tq]);
        a[i][3] = *reinterpret_cast<const uint32_t*>(&xs[r + 8][kk + 8 + 2 * tq]);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = wn + j * 8 + g;
        b[j][0] = *reinterpret_cast<const uint32_t*>(&ws[c][kk + 2 * tq]);
        b[j][1] = *reinterpret_cast<const uint32_t*>(&ws[c][kk + 8 + 2 * tq]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma16816<T>(acc[i][j], a[i], b[j]);
    }
    __syncthreads();
  }
  // fragment (i, j): rows g and g + 8, columns 2 tq and 2 tq + 1
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t m = m0 + wm + i * 16 + g + (e >= 2 ? 8 : 0);
        const int64_t n = n0 + wn + j * 8 + 2 * tq + (e & 1);
        if (m < tokens && n < out_f) out[m * out_stride + n] = from_f<T>(acc[i][j][e] + (bias ? to_f(bias[n]) : 0.f));
      }
}

template <typename TA, typename TW, int MT>
void launch_gemv(const TensorView& out, const TensorView& x, const TensorView& w, const TensorView& bias,
                 cudaStream_t st) {
  constexpr int V = 16 / int(sizeof(TW));
  const int64_t out_f = w.size(0), in_f = w.size(1);
  const bool vec = in_f % V == 0 && aligned16(w.data);
  const unsigned grid = unsigned((out_f + 7) / 8);
  const TA* b = bias.data ? bias.ptr<TA>() : nullptr;
  if (vec)
    MVLLM_LAUNCH(grid, 256, 0, st, gemv_kernel<TA, TW, MT, V>)(out.ptr<TA>(), out.stride(0), x.ptr<TA>(), x.stride(0),
                                                               w.ptr<TW>(), b, int(x.size(0)), out_f, in_f);
  else
    MVLLM_LAUNCH(grid, 256, 0, st, gemv_kernel<TA, TW, MT, 1>)(out.ptr<TA>(), out.stride(0), x.ptr<TA>(), x.stride(0),
                                                               w.ptr<TW>(), b, int(x.size(0)), out_f, in_f);
}

template <typename TA, typename TW>
void linear_impl(const TensorView& out, const TensorView& x, const TensorView& w, const TensorView& bias,
                 cudaStream_t st) {
  const int64_t tokens = x.size(0), out_f = w.size(0), in_f = w.size(1);
  const TA* b = bias.data ? bias.ptr<TA>() : nullptr;
  if (tokens <= kGemvMaxTokens) {
    if (tokens <= 1)
      launch_gemv<TA, TW, 1>(out, x, w, bias, st);
    else if (tokens <= 2)
      launch_gemv<TA, TW, 2>(out, x, w, bias, st);
    else if (tokens <= 4)
      launch_gemv<TA, TW, 4>(out, x, w, bias, st);
    else if (tokens <= 8)
      launch_gemv<TA, TW, 8>(out, x, w, bias, st);
    else
      launch_gemv<TA, TW, 16>(out, x, w, bias, st);
    return;
  }
  if constexpr (std::is_same_v<TA, TW> && !std::is_same_v<TA, float>) {
    const bool aligned = in_f % 8 == 0 && x.stride(0) % 8 == 0 && aligned16(x.data) && aligned16(w.data);
    // mma.sync m16n8k16 needs kernels built for sm_80 or later; below, the CUDA-core GEMM runs.
    static const bool tensor_cores = mma_supported(gemm_mma_kernel<TA>);
    if (aligned && tensor_cores) {
      dim3 grid(unsigned((out_f + kTileN - 1) / kTileN), unsigned((tokens + kTileM - 1) / kTileM));
      MVLLM_LAUNCH(grid, 256, 0, st, gemm_mma_kernel<TA>)(out.ptr<TA>(), out.stride(0), x.ptr<TA>(), x.stride(0),
                                                          w.ptr<TW>(), b, tokens, out_f, in_f);
      return;
    }
  }
  dim3 grid(unsigned((out_f + 63) / 64), unsigned((tokens + 63) / 64));
  MVLLM_LAUNCH(grid, 256, 0, st, gemm_simt_kernel<TA, TW>)(out.ptr<TA>(), out.stride(0), x.ptr<TA>(), x.stride(0),
                                                           w.ptr<TW>(), b, tokens, out_f, in_f);
}

}  // namespace

void linear(const TensorView& out, const TensorView& x, const TensorView& weight, const MaybeTensor& bias) {
  cudaStream_t st = stream(x.device_index);
  const int64_t in_f = weight.size(1);
  if (in_f == 0) {  // an empty sum: out = bias (or 0)
    if (bias.data) {
      for (int64_t m = 0; m < out.size(0); ++m) {
        TensorView row = out;
        row.data = static_cast<char*>(out.data) + m * out.stride(0) * int64_t(out.itemsize());
        row.ndim = 1;
        row.shape[0] = out.size(1);
        row.strides[0] = 1;
        copy(row, bias);
      }
    } else {
      fill(out, 0.0);
    }
    return;
  }
  if ((out.size(0) + 63) / 64 > 65535)
    fail(ErrorKind::Range, "linear: numTokens above 4,194,240 is not supported on CUDA");
  MVLLM_CUDA_DISPATCH_FLOAT(x.dtype, TA,
                            MVLLM_CUDA_DISPATCH_FLOAT(weight.dtype, TW, linear_impl<TA, TW>(out, x, weight, bias, st)));
  check_launch("linear");
}

}  // namespace mvllm::cuda
