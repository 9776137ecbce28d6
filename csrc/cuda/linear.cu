// Linear layers on CUDA: out = x · weightᵀ (+ bias), weight [outFeatures, inFeatures], fp32 accumulation.
//
//  - GEMV (<= 16 tokens, a decode step): warps stream weight rows in 16-byte loads, converted in registers, and dot
//    them with every token's x; the weight is read once. One token: a warp per row, x from L1. 2-16 tokens: two rows
//    per warp, x staged in shared memory per block and read back in packs (gemv_batched_kernel).
//  - GEMM with tensor cores (x and weight both float16 or both bfloat16): 128 x 128 x 32 tiles in a 3-stage cp.async
//    pipeline, swizzled shared memory read by ldmatrix, mma.sync m16n8k16, a 16-byte epilogue with the bias; split-K
//    when the tiles alone leave SMs idle.
//  - GEMM on CUDA cores otherwise (float32, mixed dtypes, unaligned rows): 64 x 64 tiles, 4 x 4 per thread.
#include <algorithm>

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

constexpr int kGemvRows = 2;          // output features per warp in the batched GEMV
constexpr int kGemvStage = 32 << 10;  // bytes of x staged in shared memory at a time

// grid: ceil(outFeatures / 16), block: 256 (8 warps, 2 output features each); 2 <= tokens <= MT.
// x is staged in shared memory KC columns at a time, once per block rather than once per output feature through L1,
// and read back as packs of V; each warp streams two weight rows in 16-byte loads. A lane visits the same columns in
// the same order as gemv_kernel (KC is a multiple of 32 packs), so a token's output has the same bits alone or in a
// batch.
template <typename TA, typename TW, int MT, int V>
__global__ void __launch_bounds__(256, 1)
    gemv_batched_kernel(TA* __restrict__ out, int64_t out_stride, const TA* __restrict__ x, int64_t x_stride,
                        const TW* __restrict__ w, const TA* __restrict__ bias, int tokens, int64_t out_f, int64_t in_f,
                        bool x_packs) {
  constexpr int KC = kGemvStage / (MT * int(sizeof(TA))) / (32 * V) * (32 * V);
  static_assert(KC >= 32 * V, "the stage holds at least one pack per lane");
  using P = Pack<TW, V>;
  using PX = Pack<TA, V>;
  __shared__ __align__(32) TA xs[MT][KC];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t n0 = (int64_t(blockIdx.x) * 8 + warp) * kGemvRows;
  float acc[kGemvRows][MT];
#pragma unroll
  for (int r = 0; r < kGemvRows; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.f;
  for (int64_t k0 = 0; k0 < in_f; k0 += KC) {
    const int kc = int(in_f - k0 < KC ? in_f - k0 : KC), packs = kc / V;
    __syncthreads();  // the previous chunk is no longer read
    if (x_packs) {
      for (int c = threadIdx.x; c < tokens * packs; c += blockDim.x) {
        const int m = c / packs, i = c % packs;
        *reinterpret_cast<PX*>(&xs[m][i * V]) = *reinterpret_cast<const PX*>(x + m * x_stride + k0 + i * V);
      }
    } else {
      for (int c = threadIdx.x; c < tokens * kc; c += blockDim.x)
        xs[c / kc][c % kc] = x[(c / kc) * x_stride + k0 + c % kc];
    }
    __syncthreads();
    for (int i = lane; i < packs; i += 32) {
      float wf[kGemvRows][V];
#pragma unroll
      for (int r = 0; r < kGemvRows; ++r) {
        if (n0 + r < out_f) {
          const P p = reinterpret_cast<const P*>(w + (n0 + r) * in_f + k0)[i];
#pragma unroll
          for (int j = 0; j < V; ++j) wf[r][j] = to_f(p.v[j]);
        } else {
#pragma unroll
          for (int j = 0; j < V; ++j) wf[r][j] = 0.f;
        }
      }
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        if (m < tokens) {
          const PX px = *reinterpret_cast<const PX*>(&xs[m][i * V]);
#pragma unroll
          for (int r = 0; r < kGemvRows; ++r)
#pragma unroll
            for (int j = 0; j < V; ++j) acc[r][m] += wf[r][j] * to_f(px.v[j]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kGemvRows; ++r) {
    const int64_t n = n0 + r;
    if (n >= out_f) break;  // the same for the whole warp
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m >= tokens) break;
      const float v = warp_sum(acc[r][m]);
      if (lane == 0) out[m * out_stride + n] = from_f<TA>(v + (bias ? to_f(bias[n]) : 0.f));
    }
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

constexpr int kTileM = 128, kTileN = 128, kTileK = 32, kStages = 3;
constexpr int kStageElems = (kTileM + kTileN) * kTileK;          // x tile, then weight tile, [rows][32]
constexpr size_t kGemmSmem = size_t(kStages) * kStageElems * 2;  // 48 KB
constexpr int kOutPitch = kTileN + 8;                            // the epilogue's staged tile, [128][136]
static_assert(size_t(kTileM) * kOutPitch * 2 <= kGemmSmem, "the epilogue tile fits in the pipeline's memory");

// Element offset of 16-byte chunk c (0..3) of row r in a [rows][32] tile. Chunk c sits at c ^ ((r >> 1) & 3): the 8
// rows one ldmatrix matrix reads fall in 8 different 16-byte bank groups, so neither ldmatrix nor cp.async conflicts.
__device__ __forceinline__ int swizzled(int r, int c) { return r * kTileK + ((c ^ ((r >> 1) & 3)) << 3); }

// grid: (ceil(outF / 128), ceil(numTokens / 128), splits), block: 256 (8 warps: 2 along M x 4 along N, 64 x 32 each),
// dynamic shared memory kGemmSmem. A 3-stage cp.async pipeline brings 128 x 32 tiles of x and the weight into
// swizzled shared memory while the tensor cores work on the previous stage; fragments come out by ldmatrix.x4. With
// splits = 1 the epilogue adds the bias, stages the tile in shared memory and stores it in 16-byte rows; with more,
// blockIdx.z takes its share of the k tiles and writes fp32 partials for splitk_reduce_kernel.
// Needs inFeatures, x's row stride and both base pointers 16-byte aligned (8 elements).
template <typename T>
__global__ void __launch_bounds__(256)
    gemm_mma_kernel(T* __restrict__ out, int64_t out_stride, const T* __restrict__ x, int64_t x_stride,
                    const T* __restrict__ w, const T* __restrict__ bias, int64_t tokens, int64_t out_f, int64_t in_f,
                    bool out_vec, float* __restrict__ partial, int ktiles_per_split) {
  MVLLM_DYNAMIC_SHARED(uint4, smem_raw);  // one declaration for every T (nvcc allows no other)
  T* smem = reinterpret_cast<T*>(smem_raw);
  const int64_t m0 = int64_t(blockIdx.y) * kTileM, n0 = int64_t(blockIdx.x) * kTileN;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;  // this warp's 64 x 32 piece of the tile
  const int g = lane >> 2, tq = lane & 3;
  const int ktiles_all = int((in_f + kTileK - 1) / kTileK);
  const int kt0 = int(blockIdx.z) * ktiles_per_split;
  const int ktiles = min(ktiles_per_split, ktiles_all - kt0);
  float acc[4][4][4] = {};  // [m16 tile][n8 tile][fragment]

  // Stage s <- k tile kt: 128 rows x 4 chunks per operand, 2 chunks of each per thread; rows past the matrix and
  // chunks past inFeatures are zero-filled (src-size 0) from a valid address.
  auto load = [&](int stage, int kt) {
    T* xs = smem + stage * kStageElems;
    T* ws = xs + kTileM * kTileK;
    const int64_t k0 = int64_t(kt0 + kt) * kTileK;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int q = int(threadIdx.x) + i * 256, r = q >> 2, c = q & 3;
      const int64_t gk = k0 + c * 8;
      const bool xin = m0 + r < tokens && gk < in_f, win = n0 + r < out_f && gk < in_f;
      cp_async16(xs + swizzled(r, c), xin ? x + (m0 + r) * x_stride + gk : x, xin ? 16 : 0);
      cp_async16(ws + swizzled(r, c), win ? w + (n0 + r) * in_f + gk : w, win ? 16 : 0);
    }
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ktiles) load(s, s);
    cp_async_commit();  // an empty group keeps the count of groups per iteration fixed
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<kStages - 2>();  // this thread's copies of tile kt are done ...
    __syncthreads();               // ... and everyone's; the stage refilled below was last read in iteration kt - 1
    if (kt + kStages - 1 < ktiles) load((kt + kStages - 1) % kStages, kt + kStages - 1);
    cp_async_commit();
    const T* xs = smem + (kt % kStages) * kStageElems;
    const T* ws = xs + kTileM * kTileK;
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      uint32_t a[4][4], b[4][2];
      // A 16 x 16: lanes 0-15 give rows 0-15 at k chunk kk/8, lanes 16-31 the same rows at kk/8 + 1.
#pragma unroll
      for (int i = 0; i < 4; ++i) ldmatrix_x4(a[i], xs + swizzled(wm + i * 16 + (lane & 15), (kk >> 3) + (lane >> 4)));
      // B for two n8 tiles: matrices (n 0-7, k lo), (n 0-7, k hi), (n 8-15, k lo), (n 8-15, k hi).
#pragma unroll
      for (int jp = 0; jp < 2; ++jp) {
        uint32_t r[4];
        ldmatrix_x4(r, ws + swizzled(wn + jp * 16 + (lane & 7) + ((lane >> 4) << 3), (kk >> 3) + ((lane >> 3) & 1)));
        b[2 * jp][0] = r[0];
        b[2 * jp][1] = r[1];
        b[2 * jp + 1][0] = r[2];
        b[2 * jp + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma16816<T>(acc[i][j], a[i], b[j]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every stage is free: the epilogue reuses the memory

  // fragment (i, j): rows g and g + 8, columns 2 tq and 2 tq + 1
  if (partial) {
    float* p = partial + int64_t(blockIdx.z) * tokens * out_f;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t m = m0 + wm + i * 16 + g + (e >= 2 ? 8 : 0);
          const int64_t n = n0 + wn + j * 8 + 2 * tq + (e & 1);
          if (m < tokens && n < out_f) p[m * out_f + n] = acc[i][j][e];
        }
    return;
  }
  T* cs = smem;  // [128][kOutPitch]
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = wm + i * 16 + g + (e >= 2 ? 8 : 0), c = wn + j * 8 + 2 * tq + (e & 1);
        const int64_t n = n0 + c;
        cs[r * kOutPitch + c] = from_f<T>(acc[i][j][e] + (bias && n < out_f ? to_f(bias[n]) : 0.f));
      }
  __syncthreads();
  for (int q = threadIdx.x; q < kTileM * (kTileN / 8); q += 256) {
    const int r = q / (kTileN / 8), c = (q % (kTileN / 8)) * 8;
    const int64_t m = m0 + r, n = n0 + c;
    if (m >= tokens || n >= out_f) continue;
    T* dst = out + m * out_stride + n;
    const T* src = cs + r * kOutPitch + c;
    if (out_vec && n + 8 <= out_f) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      for (int e = 0; e < 8 && n + e < out_f; ++e) dst[e] = src[e];
    }
  }
}

// grid: ceil(numTokens * outF / 8 / 256), block: 256. out = Σ_s partial[s] (in split order) + bias, 8 outputs per
// thread, 16-byte stores where out allows.
template <typename T>
__global__ void splitk_reduce_kernel(T* __restrict__ out, int64_t out_stride, const float* __restrict__ partial,
                                     const T* __restrict__ bias, int64_t tokens, int64_t out_f, int splits,
                                     bool out_vec) {
  const int64_t groups = (out_f + 7) / 8;
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= tokens * groups) return;
  const int64_t m = q / groups, n = (q % groups) * 8;
  Pack<T, 8> v;
  for (int e = 0; e < 8; ++e) {
    float sum = 0.f;
    if (n + e < out_f)
      for (int s = 0; s < splits; ++s) sum += partial[(int64_t(s) * tokens + m) * out_f + n + e];
    v.v[e] = from_f<T>(sum + (bias && n + e < out_f ? to_f(bias[n + e]) : 0.f));
  }
  T* dst = out + m * out_stride + n;
  if (out_vec && n + 8 <= out_f)
    *reinterpret_cast<Pack<T, 8>*>(dst) = v;
  else
    for (int e = 0; e < 8 && n + e < out_f; ++e) dst[e] = v.v[e];
}

template <typename TA, typename TW, int MT>
void launch_gemv(const TensorView& out, const TensorView& x, const TensorView& w, const TensorView& bias,
                 cudaStream_t st) {
  constexpr int V = 16 / int(sizeof(TW));
  const int64_t out_f = w.size(0), in_f = w.size(1);
  const bool vec = in_f % V == 0 && aligned16(w.data);
  const unsigned grid = unsigned((out_f + 7) / 8);
  const TA* b = bias.data ? bias.ptr<TA>() : nullptr;
  const int tokens = int(x.size(0));
  if constexpr (MT > 1) {
    if (vec && tokens > 1) {
      constexpr size_t pack = V * sizeof(TA);
      const bool x_packs = reinterpret_cast<uintptr_t>(x.data) % pack == 0 && x.stride(0) * sizeof(TA) % pack == 0;
      const unsigned rows_grid = unsigned((out_f + 8 * kGemvRows - 1) / (8 * kGemvRows));
      MVLLM_LAUNCH(rows_grid, 256, 0, st, gemv_batched_kernel<TA, TW, MT, V>)(
          out.ptr<TA>(), out.stride(0), x.ptr<TA>(), x.stride(0), w.ptr<TW>(), b, tokens, out_f, in_f, x_packs);
      return;
    }
  }
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
      const int64_t tiles = ((out_f + kTileN - 1) / kTileN) * ((tokens + kTileM - 1) / kTileM);
      const int ktiles = int((in_f + kTileK - 1) / kTileK);
      // Split-K where the tiles leave SMs idle (17 <= tokens <= 128 on most layers): enough splits for two waves,
      // each at least 8 k tiles (256 of inFeatures), at most 8; the partials sum in split order (deterministic).
      int splits = 1;
      const int sms = sm_count(x.device_index);
      if (tiles < sms) {
        splits = int(std::min<int64_t>({(2 * sms + tiles - 1) / tiles, 8, std::max(1, ktiles / 8)}));
      }
      const int per_split = (ktiles + splits - 1) / splits;
      splits = (ktiles + per_split - 1) / per_split;
      float* partial = splits > 1 ? static_cast<float*>(scratch(x.device_index, size_t(splits) * size_t(tokens) *
                                                                                    size_t(out_f) * sizeof(float)))
                                  : nullptr;
      const bool out_vec = aligned16(out.data) && out.stride(0) % 8 == 0;
      dim3 grid(unsigned((out_f + kTileN - 1) / kTileN), unsigned((tokens + kTileM - 1) / kTileM), unsigned(splits));
      MVLLM_LAUNCH(grid, 256, kGemmSmem, st, gemm_mma_kernel<TA>)(out.ptr<TA>(), out.stride(0), x.ptr<TA>(),
                                                                  x.stride(0), w.ptr<TW>(), b, tokens, out_f, in_f,
                                                                  out_vec, partial, per_split);
      if (partial) {
        check_launch("linear (split-K GEMM)");
        MVLLM_LAUNCH(blocks_for(tokens * ((out_f + 7) / 8), 256), 256, 0, st, splitk_reduce_kernel<TA>)(
            out.ptr<TA>(), out.stride(0), partial, b, tokens, out_f, splits, out_vec);
      }
      return;
    }
  }
  dim3 grid(unsigned((out_f + 63) / 64), unsigned((tokens + 63) / 64));
  MVLLM_LAUNCH(grid, 256, 0, st, gemm_simt_kernel<TA, TW>)(out.ptr<TA>(), out.stride(0), x.ptr<TA>(), x.stride(0),
                                                           w.ptr<TW>(), b, tokens, out_f, in_f);
}

}  // namespace

void empty_sum(const TensorView& out, const MaybeTensor& bias) {
  if (!bias.data) return fill(out, 0.0);
  for (int64_t m = 0; m < out.size(0); ++m) {
    TensorView row = out;
    row.data = static_cast<char*>(out.data) + m * out.stride(0) * int64_t(out.itemsize());
    row.ndim = 1;
    row.shape[0] = out.size(1);
    row.strides[0] = 1;
    copy(row, bias);
  }
}

void linear(const TensorView& out, const TensorView& x, const TensorView& weight, const MaybeTensor& bias) {
  cudaStream_t st = stream(x.device_index);
  const int64_t in_f = weight.size(1);
  if (in_f == 0) return empty_sum(out, bias);
  if ((out.size(0) + 63) / 64 > 65535)
    fail(ErrorKind::Range, "linear: numTokens above 4,194,240 is not supported on CUDA");
  MVLLM_CUDA_DISPATCH_FLOAT(x.dtype, TA,
                            MVLLM_CUDA_DISPATCH_FLOAT(weight.dtype, TW, linear_impl<TA, TW>(out, x, weight, bias, st)));
  check_launch("linear");
}

}  // namespace mvllm::cuda
