// The inline PTX the kernels use, one wrapper per instruction. The emulated build (MINI_VLLM_CUDA_EMULATED) gives each
// its twin in csrc/cuda/emu, which computes the same instruction on the CPU.
#pragma once

#include <cstdint>
#include <type_traits>

#include "common.cuh"

namespace mvllm::cuda {

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}: d = a · b + d for one 16 x 8 x 16 tile (a: 4 regs, b: 2, d: 4
// fp32), fragments per the PTX ISA. sm_80 and later only: the host takes the CUDA-core GEMM where the kernels were
// built for less (mma_supported), and a pre-sm_80 build of this traps rather than leave d untouched.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(MINI_VLLM_CUDA_EMULATED)
  if (::mvllm::emu::arch() < 80) __trap();
  ::mvllm::emu::mma_m16n8k16<T>(d, a, b);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
}

// Whether `kernel` was built for an architecture with mma.sync m16n8k16 (sm_80 or later), as this device runs it.
template <typename F>
bool mma_supported(F* kernel) {
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attr.ptxVersion >= 80 && attr.binaryVersion >= 80;
}

}  // namespace mvllm::cuda
