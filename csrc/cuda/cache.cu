// reshapeAndCache: one block per token copies its K and V rows into their cache slot, 16 bytes at a time.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

// grid: numTokens, block: 128 threads over numKvHeads x headSize / V packs
template <typename T, int V>
__global__ void reshape_and_cache_kernel(const T* __restrict__ key, int64_t key_s0, int64_t key_s1,    // [T, Hkv, D]
                                         const T* __restrict__ value, int64_t val_s0, int64_t val_s1,  // [T, Hkv, D]
                                         T* __restrict__ key_cache, T* __restrict__ value_cache,  // [B, bs, Hkv, D]
                                         const int32_t* __restrict__ slot_mapping,                // [T]
                                         int64_t num_slots, int kv_heads, int head_size, unsigned* flags) {
  const int64_t t = blockIdx.x;
  const int64_t slot = slot_mapping[t];
  if (slot < 0) return;  // padding
  if (slot >= num_slots) {
    if (threadIdx.x == 0) atomicOr(flags, unsigned(kSlotOutOfRange));
    return;
  }
  using P = Pack<T, V>;
  const int packs_per_head = head_size / V;
  // NOTE: int64 offsets: a large pool exceeds 2^31 elements.
  const int64_t dst_base = slot * int64_t(kv_heads) * head_size;
  for (int i = threadIdx.x; i < kv_heads * packs_per_head; i += blockDim.x) {
    const int h = i / packs_per_head, c = (i % packs_per_head) * V;
    const int64_t dst = dst_base + int64_t(h) * head_size + c;
    *reinterpret_cast<P*>(key_cache + dst) = *reinterpret_cast<const P*>(key + t * key_s0 + h * key_s1 + c);
    *reinterpret_cast<P*>(value_cache + dst) = *reinterpret_cast<const P*>(value + t * val_s0 + h * val_s1 + c);
  }
}

}  // namespace

void reshape_and_cache(const TensorView& key, const TensorView& value, const TensorView& key_cache,
                       const TensorView& value_cache, const TensorView& slot_mapping) {
  const int64_t tokens = slot_mapping.size(0);
  const int kv_heads = int(key_cache.size(2)), head_size = int(key_cache.size(3));
  const int64_t num_slots = key_cache.size(0) * key_cache.size(1);
  cudaStream_t st = stream(key_cache.device_index);
  unsigned* flags = assert_flags(key_cache.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(key_cache.dtype, T, {
    constexpr int V = 16 / int(sizeof(T));
    const bool vec = head_size % V == 0 && key.stride(0) % V == 0 && key.stride(1) % V == 0 &&
                     value.stride(0) % V == 0 && value.stride(1) % V == 0 && aligned16(key.data) &&
                     aligned16(value.data) && aligned16(key_cache.data) && aligned16(value_cache.data);
    if (vec)
      MVLLM_LAUNCH(unsigned(tokens), 128, 0, st, reshape_and_cache_kernel<T, V>)(
          key.ptr<T>(), key.stride(0), key.stride(1), value.ptr<T>(), value.stride(0), value.stride(1),
          key_cache.ptr<T>(), value_cache.ptr<T>(), slot_mapping.ptr<int32_t>(), num_slots, kv_heads, head_size, flags);
    else
      MVLLM_LAUNCH(unsigned(tokens), 128, 0, st, reshape_and_cache_kernel<T, 1>)(
          key.ptr<T>(), key.stride(0), key.stride(1), value.ptr<T>(), value.stride(0), value.stride(1),
          key_cache.ptr<T>(), value_cache.ptr<T>(), slot_mapping.ptr<int32_t>(), num_slots, kv_heads, head_size, flags);
  });
  check_launch("reshapeAndCache");
}

}  // namespace mvllm::cuda
