// A counter-based uniform generator shared by the CPU and CUDA fillUniform kernels, so both backends write the same
// seeded values: element i of a fill keyed by `seed` depends on (seed, i) only, never on threads or launch shape.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MVLLM_HD __host__ __device__
#else
#define MVLLM_HD
#endif

namespace mvllm {

// Chris Wellons' lowbias32 integer hash: a bijection on 32 bits with good avalanche.
MVLLM_HD inline uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// Uniform in [low, high): 24 random bits of hash(i, seed), scaled in double and rounded once to float.
MVLLM_HD inline float uniform_at(uint32_t seed, uint64_t i, float low, float high) {
  const uint32_t h = lowbias32(uint32_t(i) ^ lowbias32(uint32_t(i >> 32) ^ lowbias32(seed)));
  const double u = (double(h >> 8) + 0.5) * (1.0 / 16777216.0);
  return float(double(low) + (double(high) - double(low)) * u);
}

}  // namespace mvllm

#undef MVLLM_HD  // core/quant.h and core/random.h each define it for their own functions
