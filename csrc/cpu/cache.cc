// Writing a step's new K/V rows into the paged cache on the CPU: one token per task, rows copied as they are.
#include <cstring>

#include "kernels.h"
#include "level.h"
#include "parallel.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

void reshape_and_cache(const TensorView& key, const TensorView& value, const TensorView& key_cache,
                       const TensorView& value_cache, const TensorView& slot_mapping) {
  const int64_t tokens = slot_mapping.size(0), kv_heads = key_cache.size(2), head_size = key_cache.size(3);
  const int64_t slots = key_cache.size(0) * key_cache.size(1);
  const int32_t* slot = slot_mapping.ptr<int32_t>();
  // Checked before the first write, so a bad call leaves the cache as it was.
  for (int64_t t = 0; t < tokens; ++t)
    if (slot[t] >= slots)
      fail(ErrorKind::Range, "reshapeAndCache: slotMapping[", t, "] = ", slot[t], " is past the cache (numBlocks x ",
           "blockSize = ", slots, " slots)");
  const size_t row_bytes = size_t(head_size) * key.itemsize();
  const int64_t slot_elems = kv_heads * head_size;  // a slot is one token's [numKvHeads, headSize]
  char* kc = static_cast<char*>(key_cache.data);
  char* vc = static_cast<char*>(value_cache.data);
  const size_t item = key.itemsize();
  parallel_for(tokens, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, slot_elems)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      if (slot[t] < 0) continue;  // padding
      for (int64_t h = 0; h < kv_heads; ++h) {
        const int64_t dst = (int64_t(slot[t]) * slot_elems + h * head_size) * int64_t(item);
        std::memcpy(kc + dst, static_cast<const char*>(key.data) + (t * key.stride(0) + h * key.stride(1)) * item,
                    row_bytes);
        std::memcpy(vc + dst, static_cast<const char*>(value.data) + (t * value.stride(0) + h * value.stride(1)) * item,
                    row_bytes);
      }
    }
  });
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
