// Shared device helpers: storage types, 16-byte packs, block reductions, launch checks, the device-assert word.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../core/error.h"
#include "../core/tensor.h"

// A kernel launch, `MVLLM_LAUNCH(grid, block, smem, stream, kernel)(args...)`, and a kernel's dynamic shared memory,
// `MVLLM_DYNAMIC_SHARED(float, smem);`: the same sources build with nvcc and for the emulated device (csrc/emu).
#ifdef MINI_VLLM_CUDA_EMULATED
#define MVLLM_LAUNCH(grid, block, smem, stream, ...) MVLLM_EMU_LAUNCH(grid, block, smem, stream, __VA_ARGS__)
#define MVLLM_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::mvllm::emu::vars().dynamic_smem)
#else
#define MVLLM_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
#define MVLLM_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

namespace mvllm::cuda {

// ---- host side ----
[[noreturn]] void throw_cuda(cudaError_t err, const char* what);
inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw_cuda(err, what);
}
// After a launch: a bad configuration surfaces here, synchronously, as a JS exception.
inline void check_launch(const char* op) { check(cudaGetLastError(), op); }

cudaStream_t stream(int device);     // the device's one compute stream (sets the current device)
unsigned* assert_flags(int device);  // device word kernels OR their failure bits into
int sm_count(int device);            // the device's multiprocessors (launches that size themselves to fill them)
size_t smem_optin(int device);       // the most shared memory a block may have, with the opt-in
// out[i] = table[indices[i]] (embedding, gatherRows): an index outside the table zero-fills its row and sets
// kIndexOutOfRange. `op` names the launch in an error.
void copy_rows(const TensorView& out, const TensorView& indices, const TensorView& table, const char* op);

// Bits in the device-assert word; synchronize() turns them into RangeErrors.
enum AssertBit : unsigned {
  kRotaryPositionOutOfRange = 1u << 0,
  kSlotOutOfRange = 1u << 1,        // reshapeAndCache: a slot past the cache
  kBlockIdOutOfRange = 1u << 2,     // pagedAttention: a block table entry outside the pool
  kAttentionMetaInvalid = 1u << 3,  // pagedAttention: queryStartLoc / seqLens inconsistent
  kIndexOutOfRange = 1u << 4,       // embedding / gatherRows: an index outside the table
  kMaskRowOutOfRange = 1u << 5,     // applyTokenBitmask: a rows entry outside the logits
};

// Device scratch that grows on demand (split-KV and split-K partials); contents do not survive the next call. Growing
// it during a graph capture is an error (warm the largest shape up first); each regrowth bumps the generation graphs
// check.
void* scratch(int device, size_t bytes);
uint64_t scratch_generation(int device);

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::Float32;
};
template <>
struct DTypeOf<__half> {
  static constexpr DType value = DType::Float16;
};
template <>
struct DTypeOf<__nv_bfloat16> {
  static constexpr DType value = DType::BFloat16;
};

#define MVLLM_CUDA_DISPATCH_FLOAT(dtype, T, ...) \
  MVLLM_DISPATCH_FLOAT_AS(dtype, T, float, __half, __nv_bfloat16, __VA_ARGS__)

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

inline unsigned blocks_for(int64_t n, int threads, int64_t cap = 65535ll * 16) {
  int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : (b > cap ? cap : b));
}

// ---- device side (the conversions also run on the host) ----
__host__ __device__ __forceinline__ float to_f(float v) { return v; }
__host__ __device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__host__ __device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__host__ __device__ __forceinline__ T from_f(float v);
template <>
__host__ __device__ __forceinline__ float from_f<float>(float v) {
  return v;
}
template <>
__host__ __device__ __forceinline__ __half from_f<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__host__ __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
// Round to what T can hold, staying in fp32.
template <typename T>
__host__ __device__ __forceinline__ float round_to(float v) {
  return to_f(from_f<T>(v));
}

// V elements of T moved as one load/store (16 bytes when V * sizeof(T) == 16).
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block; every thread gets the result. blockDim.x must be a multiple of 32.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = lane < warps ? partial[lane] : 0.f;
  return warp_sum(v);
}

}  // namespace mvllm::cuda
