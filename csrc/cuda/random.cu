// Seeded uniform fill (dummy weights): element i is uniform_at(seed, i) (core/random.h), the same values as the CPU.
#include "../core/random.h"
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

template <typename T>
__global__ void fill_uniform_kernel(T* dst, int64_t n, float low, float high, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_f<T>(uniform_at(seed, uint64_t(i), low, high));
}

}  // namespace

void fill_uniform(const TensorView& t, double low_d, double high_d, double seed_d) {
  const int64_t n = t.numel();
  const float low = float(low_d), high = float(high_d);
  const uint32_t seed = uint32_t(seed_d);
  cudaStream_t st = stream(t.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(t.dtype, T, {
    MVLLM_LAUNCH(blocks_for(n, 256), 256, 0, st, fill_uniform_kernel<T>)(t.ptr<T>(), n, low, high, seed);
  });
  check_launch("fillUniform");
}

}  // namespace mvllm::cuda
