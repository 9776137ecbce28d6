// Dtype dispatch for CPU kernels: runs the statement with T bound to the host storage type.
#pragma once

#include "../core/dtype.h"

#define MVLLM_CPU_DISPATCH_FLOAT(dtype, T, ...)                     \
  switch (dtype) {                                                  \
    case ::mvllm::DType::Float32: { using T = float; __VA_ARGS__; break; } \
    case ::mvllm::DType::Float16: { using T = ::mvllm::f16; __VA_ARGS__; break; } \
    case ::mvllm::DType::BFloat16: { using T = ::mvllm::bf16; __VA_ARGS__; break; } \
    default: break;                                                 \
  }

namespace mvllm::cpu {
// Outputs at least this large are written with non-temporal stores: they cannot stay in cache anyway,
// and streaming saves the read-for-ownership. Smaller outputs stay cached for the next op.
constexpr int64_t kStreamBytes = 16ll << 20;
}  // namespace mvllm::cpu
