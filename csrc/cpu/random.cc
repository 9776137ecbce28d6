// Seeded uniform fill (dummy weights): element i is uniform_at(seed, i) (core/random.h), the same values as CUDA
// writes.
#include "../core/random.h"

#include <algorithm>

#include "../core/op_checks.h"
#include "dispatch.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

namespace {

// Elements [a, b): fp32 values 256 at a time into a buffer (the hash vectorises on its own there), then converted to
// T by the vector layer's stores. The scalar conversions of a plain loop left float16 slower at avx512 than at avx2.
template <typename T>
void fill_range(T* p, int64_t a, int64_t b, uint32_t seed, float low, float high) {
  constexpr int64_t kChunk = 256;
  alignas(64) float buf[kChunk];
  for (int64_t i = a; i < b; i += kChunk) {
    const int64_t n = std::min(kChunk, b - i);
    for (int64_t j = 0; j < n; ++j) buf[j] = uniform_at(seed, uint64_t(i + j), low, high);
    int64_t j = 0;
    for (; j + Vec::N <= n; j += Vec::N) vstore(p + i + j, vload(buf + j));
    for (; j < n; ++j) p[i + j] = from_float<T>(buf[j]);
  }
}

}  // namespace

void fill_uniform(const TensorView& t, double low_d, double high_d, double seed_d) {
  const float low = float(low_d), high = float(high_d);
  const uint32_t seed = uint32_t(seed_d);
  const int64_t n = t.numel();
  parallel_for(n, 1 << 14, [&](int64_t a, int64_t b) {
    if (t.dtype == DType::Float32) {
      float* p = t.ptr<float>();
      for (int64_t i = a; i < b; ++i) p[i] = uniform_at(seed, uint64_t(i), low, high);
      return;
    }
    MVLLM_CPU_DISPATCH_FLOAT(t.dtype, T, fill_range(t.ptr<T>(), a, b, seed, low, high));
  });
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
