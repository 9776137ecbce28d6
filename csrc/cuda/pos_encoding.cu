// Rotary position embedding, in place on query and key: one block per token, fp32 math.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

template <typename T, typename C, bool kNeox>
__device__ __forceinline__ void rotate(T* __restrict__ head, const C* __restrict__ cos, const C* __restrict__ sin,
                                       int r, int embed) {
  const int xi = kNeox ? r : 2 * r;
  const int yi = kNeox ? embed + r : 2 * r + 1;
  const float c = to_f(cos[r]), s = to_f(sin[r]);
  const float x = to_f(head[xi]), y = to_f(head[yi]);
  head[xi] = from_f<T>(x * c - y * s);
  head[yi] = from_f<T>(y * c + x * s);
}

// grid: numTokens, block: min(numHeads * rotaryDim / 2, 512); each thread rotates (head, pair) items.
template <typename T, typename C, bool kNeox>
__global__ void rotary_kernel(const int32_t* __restrict__ positions,        // [numTokens]
                              T* __restrict__ query, int64_t query_stride,  // [numTokens, numHeads * headSize]
                              T* __restrict__ key, int64_t key_stride,  // [numTokens, numKvHeads * headSize] or null
                              const C* __restrict__ cos_sin_cache,      // [maxPosition, rotDim]
                              int rot_dim, int head_size, int num_heads, int num_kv_heads, int max_position,
                              unsigned* __restrict__ assert_flags) {
  const int t = blockIdx.x;
  const int pos = positions[t];
  if (pos < 0 || pos >= max_position) {
    // Never read past the cache; report through the assert word, found at the next synchronize.
    if (threadIdx.x == 0) atomicOr(assert_flags, unsigned(kRotaryPositionOutOfRange));
    return;
  }
  const int embed = rot_dim / 2;
  const C* cos = cos_sin_cache + int64_t(pos) * rot_dim;
  const C* sin = cos + embed;
  T* q = query + t * query_stride;
  for (int i = threadIdx.x; i < num_heads * embed; i += blockDim.x)
    rotate<T, C, kNeox>(q + (i / embed) * head_size, cos, sin, i % embed, embed);
  if (key) {
    T* k = key + t * key_stride;
    for (int i = threadIdx.x; i < num_kv_heads * embed; i += blockDim.x)
      rotate<T, C, kNeox>(k + (i / embed) * head_size, cos, sin, i % embed, embed);
  }
}

template <typename T, typename C>
void launch(const TensorView& positions, const TensorView& query, const TensorView& key, int64_t head_size,
            const TensorView& cache, bool is_neox, cudaStream_t st, unsigned* flags) {
  const int tokens = int(query.size(0));
  const int rot_dim = int(cache.size(1));
  const int nq = int(query.size(1) / head_size), nk = key.data ? int(key.size(1) / head_size) : 0;
  const int threads = std::min(512, std::max(32, ((nq * rot_dim / 2 + 31) / 32) * 32));
  auto kernel = is_neox ? rotary_kernel<T, C, true> : rotary_kernel<T, C, false>;
  MVLLM_LAUNCH(unsigned(tokens), threads, 0, st, kernel)(
      positions.ptr<int32_t>(), query.ptr<T>(), query.stride(0), key.data ? key.ptr<T>() : nullptr,
      key.data ? key.stride(0) : 0, cache.ptr<C>(), rot_dim, int(head_size), nq, nk, int(cache.size(0)), flags);
}

}  // namespace

void rotary_embedding(const TensorView& positions, const TensorView& query, const MaybeTensor& key, double head_size_d,
                      const TensorView& cos_sin_cache, bool is_neox) {
  const int64_t head_size = int64_t(head_size_d);
  const int dev = query.device_index;
  cudaStream_t st = stream(dev);
  unsigned* flags = assert_flags(dev);
  const bool same = cos_sin_cache.dtype == query.dtype;
  MVLLM_CUDA_DISPATCH_FLOAT(query.dtype, T, {
    if (same)
      launch<T, T>(positions, query, key, head_size, cos_sin_cache, is_neox, st, flags);
    else
      launch<T, float>(positions, query, key, head_size, cos_sin_cache, is_neox, st, flags);
  });
  check_launch("rotaryEmbedding");
}

}  // namespace mvllm::cuda
