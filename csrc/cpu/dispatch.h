// Dtype dispatch for CPU kernels: runs the statement with T bound to the host storage type.
#pragma once

#include "../core/dtype.h"

#define MVLLM_CPU_DISPATCH_FLOAT(dtype, T, ...) \
  MVLLM_DISPATCH_FLOAT_AS(dtype, T, float, ::mvllm::f16, ::mvllm::bf16, __VA_ARGS__)

namespace mvllm::cpu {
// Outputs at least this large are written with non-temporal stores: they cannot stay in cache anyway,
// and streaming saves the read-for-ownership. Smaller outputs stay cached for the next op.
constexpr int64_t kStreamBytes = 16ll << 20;
}  // namespace mvllm::cpu
