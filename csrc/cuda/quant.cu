// Quantised weights on CUDA (ggml's block types, core/quant.h), dequantised as they are read; the weight stays
// quantised in device memory.
// - quantLinear, few tokens (decode): a dequantising GEMV, one warp per output feature. Each lane dequantises 32-value
//   chunks of the row into registers and dots them with up to 4 tokens' x; grid.y takes the next 4 tokens.
// - quantLinear, many tokens (prefill): a 64 x 64 tile GEMM over k-steps of 32. Each step stages x and the
//   dequantised weight tile in shared memory; f16/bf16 activations multiply on the tensor cores (mma.sync m16n8k16,
//   sm_80+), fp32 ones (or an older build) on the CUDA cores.
// - quantEmbedding: one block per id, each thread dequantising chunks of the row.
#include "../core/quant.h"
#include "api.h"
#include "common.cuh"
#include "ptx.cuh"

namespace mvllm::cuda {
namespace {

constexpr int kGemvTokens = 4;
constexpr int64_t kGemvMaxTokens = 16;

// Chunk c (32 values) of a quantised row.
__device__ __forceinline__ void row_chunk(int type, const uint8_t* row, int per, int bytes, int64_t c, float* y) {
  dequant_chunk(type, row + (c / per) * bytes, int(c % per), y);
}

// grid: (ceil(outF / 8), ceil(tokens / 4)), block 256: warp w of block b computes feature 8 b + w for 4 tokens.
template <typename TA>
__global__ void __launch_bounds__(256)
    quant_gemv_kernel(TA* __restrict__ out, int64_t out_stride, const TA* __restrict__ x, int64_t x_stride,
                      const uint8_t* __restrict__ w, int64_t w_stride, int type, int per, int bytes,
                      const TA* __restrict__ bias, int64_t tokens, int64_t out_f, int64_t in_f) {
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * 8 + (threadIdx.x >> 5);
  const int64_t m0 = int64_t(blockIdx.y) * kGemvTokens;
  if (n >= out_f) return;
  const int mt = int(tokens - m0 < kGemvTokens ? tokens - m0 : kGemvTokens);
  float acc[kGemvTokens] = {0.f, 0.f, 0.f, 0.f};
  const uint8_t* row = w + n * w_stride;
  for (int64_t c = lane; c * 32 < in_f; c += 32) {
    float y[32];
    row_chunk(type, row, per, bytes, c, y);
#pragma unroll
    for (int m = 0; m < kGemvTokens; ++m) {
      if (m >= mt) break;
      const TA* xm = x + (m0 + m) * x_stride + c * 32;
      float s = 0.f;
#pragma unroll
      for (int l = 0; l < 32; ++l) s += y[l] * to_f(xm[l]);
      acc[m] += s;
    }
  }
#pragma unroll
  for (int m = 0; m < kGemvTokens; ++m) {
    const float s = warp_sum(acc[m]);
    if (lane == 0 && m < mt) out[(m0 + m) * out_stride + n] = from_f<TA>(s + (bias ? to_f(bias[n]) : 0.f));
  }
}

constexpr int kTile = 64, kStep = 32, kPad = 8;

// The weight tile of a k-step: rows n0.. of the step's 32 values (one chunk each), dequantised by the first 64
// threads; rows past outF are zeros.
template <typename S>
__device__ __forceinline__ void stage_weight(S (*ws)[kStep + kPad], const uint8_t* w, int64_t w_stride, int type,
                                             int per, int bytes, int64_t n0, int64_t out_f, int64_t c) {
  if (threadIdx.x < kTile) {
    const int r = threadIdx.x;
    float y[32];
    if (n0 + r < out_f)
      row_chunk(type, w + (n0 + r) * w_stride, per, bytes, c, y);
    else
      for (int l = 0; l < 32; ++l) y[l] = 0.f;
    for (int l = 0; l < 32; ++l) ws[r][l] = from_f<S>(y[l]);
  }
}

// grid: (ceil(outF / 64), ceil(tokens / 64)), block 256. T: __half or __nv_bfloat16. Warp w computes tokens
// 16 (w % 4).. and features 32 (w / 4).., four 16 x 8 mma tiles per 16 of k.
template <typename T>
__global__ void __launch_bounds__(256)
    quant_gemm_mma_kernel(T* __restrict__ out, int64_t out_stride, const T* __restrict__ x, int64_t x_stride,
                          const uint8_t* __restrict__ w, int64_t w_stride, int type, int per, int bytes,
                          const T* __restrict__ bias, int64_t tokens, int64_t out_f, int64_t in_f) {
  __shared__ __align__(16) T xs[kTile][kStep + kPad];
  __shared__ __align__(16) T ws[kTile][kStep + kPad];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int64_t n0 = int64_t(blockIdx.x) * kTile, m0 = int64_t(blockIdx.y) * kTile;
  const int wm = (warp & 3) * 16, wn = (warp >> 2) * 32;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < in_f; k0 += kStep) {
    {
      const int r = tid >> 2, col = (tid & 3) * 8;
      for (int i = 0; i < 8; ++i)
        xs[r][col + i] = m0 + r < tokens ? x[(m0 + r) * x_stride + k0 + col + i] : from_f<T>(0.f);
    }
    stage_weight(ws, w, w_stride, type, per, bytes, n0, out_f, k0 / 32);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kStep; kk += 16) {
      uint32_t a[4];
      a[0] = *reinterpret_cast<const uint32_t*>(&xs[wm + g][kk + 2 * t]);
      a[1] = *reinterpret_cast<const uint32_t*>(&xs[wm + g + 8][kk + 2 * t]);
      a[2] = *reinterpret_cast<const uint32_t*>(&xs[wm + g][kk + 2 * t + 8]);
      a[3] = *reinterpret_cast<const uint32_t*>(&xs[wm + g + 8][kk + 2 * t + 8]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        uint32_t b[2];
        b[0] = *reinterpret_cast<const uint32_t*>(&ws[wn + 8 * j + g][kk + 2 * t]);
        b[1] = *reinterpret_cast<const uint32_t*>(&ws[wn + 8 * j + g][kk + 2 * t + 8]);
        mma16816<T>(acc[j], a, b);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t m = m0 + wm + g + (e >> 1) * 8, n = n0 + wn + 8 * j + 2 * t + (e & 1);
      if (m < tokens && n < out_f) out[m * out_stride + n] = from_f<T>(acc[j][e] + (bias ? to_f(bias[n]) : 0.f));
    }
}

// The same tile on the CUDA cores, any activation dtype: thread (ty, tx) computes tokens 4 ty.. x features 4 tx..
template <typename TA>
__global__ void __launch_bounds__(256)
    quant_gemm_simt_kernel(TA* __restrict__ out, int64_t out_stride, const TA* __restrict__ x, int64_t x_stride,
                           const uint8_t* __restrict__ w, int64_t w_stride, int type, int per, int bytes,
                           const TA* __restrict__ bias, int64_t tokens, int64_t out_f, int64_t in_f) {
  __shared__ float xs[kTile][kStep + 1];
  __shared__ float ws[kTile][kStep + kPad];
  const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
  const int64_t n0 = int64_t(blockIdx.x) * kTile, m0 = int64_t(blockIdx.y) * kTile;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < in_f; k0 += kStep) {
    {
      const int r = tid >> 2, col = (tid & 3) * 8;
      for (int i = 0; i < 8; ++i) xs[r][col + i] = m0 + r < tokens ? to_f(x[(m0 + r) * x_stride + k0 + col + i]) : 0.f;
    }
    stage_weight(ws, w, w_stride, type, per, bytes, n0, out_f, k0 / 32);
    __syncthreads();
    for (int k = 0; k < kStep; ++k) {
      float a[4], b[4];
      for (int i = 0; i < 4; ++i) a[i] = xs[ty * 4 + i][k];
      for (int j = 0; j < 4; ++j) b[j] = ws[tx * 4 + j][k];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const int64_t m = m0 + ty * 4 + i, n = n0 + tx * 4 + j;
      if (m < tokens && n < out_f) out[m * out_stride + n] = from_f<TA>(acc[i][j] + (bias ? to_f(bias[n]) : 0.f));
    }
}

// grid: n ids, block 128: out[i] = dequant(table[ids[i]]); an id outside the table zero-fills its row.
template <typename TA>
__global__ void quant_embedding_kernel(TA* __restrict__ out, int64_t out_stride, const int32_t* __restrict__ ids,
                                       const uint8_t* __restrict__ table, int64_t t_stride, int64_t rows, int type,
                                       int per, int bytes, int64_t hidden, unsigned* flags) {
  const int64_t i = blockIdx.x, id = ids[i];
  TA* o = out + i * out_stride;
  if (id < 0 || id >= rows) {
    if (threadIdx.x == 0) atomicOr(flags, unsigned(kIndexOutOfRange));
    for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x) o[j] = from_f<TA>(0.f);
    return;
  }
  for (int64_t c = threadIdx.x; c * 32 < hidden; c += blockDim.x) {
    float y[32];
    row_chunk(type, table + id * t_stride, per, bytes, c, y);
    for (int l = 0; l < 32; ++l) o[c * 32 + l] = from_f<TA>(y[l]);
  }
}

template <typename TA>
void quant_linear_impl(const TensorView& out, const TensorView& x, const TensorView& w, int type, const QuantFormat& f,
                       const TA* bias, cudaStream_t st) {
  const int64_t tokens = x.size(0), out_f = w.size(0), in_f = x.size(1), w_stride = w.stride(0) * 4;
  const uint8_t* wp = static_cast<const uint8_t*>(w.data);
  const int per = f.block / 32;
  if (tokens <= kGemvMaxTokens) {
    dim3 grid(unsigned((out_f + 7) / 8), unsigned((tokens + kGemvTokens - 1) / kGemvTokens));
    MVLLM_LAUNCH(grid, 256, 0, st, quant_gemv_kernel<TA>)(out.ptr<TA>(), out.stride(0), x.ptr<TA>(), x.stride(0), wp,
                                                          w_stride, type, per, f.bytes, bias, tokens, out_f, in_f);
    return;
  }
  dim3 grid(unsigned((out_f + kTile - 1) / kTile), unsigned((tokens + kTile - 1) / kTile));
  if constexpr (!std::is_same_v<TA, float>) {
    static const bool tensor_cores = mma_supported(quant_gemm_mma_kernel<TA>);
    if (tensor_cores) {
      MVLLM_LAUNCH(grid, 256, 0, st, quant_gemm_mma_kernel<TA>)(out.ptr<TA>(), out.stride(0), x.ptr<TA>(), x.stride(0),
                                                                wp, w_stride, type, per, f.bytes, bias, tokens, out_f,
                                                                in_f);
      return;
    }
  }
  MVLLM_LAUNCH(grid, 256, 0, st, quant_gemm_simt_kernel<TA>)(out.ptr<TA>(), out.stride(0), x.ptr<TA>(), x.stride(0), wp,
                                                             w_stride, type, per, f.bytes, bias, tokens, out_f, in_f);
}

}  // namespace

void quant_linear(const TensorView& out, const TensorView& x, const TensorView& weight, double type,
                  const MaybeTensor& bias) {
  QuantFormat f{};
  quant_format(int64_t(type), &f);
  if (out.size(0) == 0) return;
  if (x.size(1) == 0) return empty_sum(out, bias);
  if ((out.size(0) + kTile - 1) / kTile > 65535)
    fail(ErrorKind::Range, "quantLinear: numTokens above 4,194,240 is not supported on CUDA");
  cudaStream_t st = stream(x.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(
      x.dtype, TA, quant_linear_impl<TA>(out, x, weight, int(type), f, bias.data ? bias.ptr<TA>() : nullptr, st));
  check_launch("quantLinear");
}

void quant_embedding(const TensorView& out, const TensorView& ids, const TensorView& table, double type) {
  QuantFormat f{};
  quant_format(int64_t(type), &f);
  const int64_t n = ids.size(0);
  if (n == 0) return;
  cudaStream_t st = stream(out.device_index);
  unsigned* flags = assert_flags(out.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(
      out.dtype, TA,
      MVLLM_LAUNCH(unsigned(n), 128, 0, st, quant_embedding_kernel<TA>)(
          out.ptr<TA>(), out.stride(0), ids.ptr<int32_t>(), static_cast<const uint8_t*>(table.data),
          table.stride(0) * 4, table.size(0), int(type), f.block / 32, f.bytes, out.size(1), flags));
  check_launch("quantEmbedding");
}

}  // namespace mvllm::cuda
