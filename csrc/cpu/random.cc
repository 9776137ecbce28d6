// Seeded uniform fill (dummy weights): element i is uniform_at(seed, i) (core/random.h), the same values as CUDA
// writes.
#include "../core/random.h"

#include "../core/op_checks.h"
#include "level.h"
#include "parallel.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

void fill_uniform(const TensorView& t, double low_d, double high_d, double seed_d) {
  const float low = float(low_d), high = float(high_d);
  const uint32_t seed = uint32_t(seed_d);
  const int64_t n = t.numel();
  parallel_for(n, 1 << 14, [&](int64_t a, int64_t b) {
    switch (t.dtype) {
      case DType::Float32: {
        float* p = t.ptr<float>();
        for (int64_t i = a; i < b; ++i) p[i] = uniform_at(seed, uint64_t(i), low, high);
        break;
      }
      case DType::Float16: {
        uint16_t* p = static_cast<uint16_t*>(t.data);
        for (int64_t i = a; i < b; ++i) p[i] = float_to_f16(uniform_at(seed, uint64_t(i), low, high));
        break;
      }
      default: {
        uint16_t* p = static_cast<uint16_t*>(t.data);
        for (int64_t i = a; i < b; ++i) p[i] = float_to_bf16(uniform_at(seed, uint64_t(i), low, high));
      }
    }
  });
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
