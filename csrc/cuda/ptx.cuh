// The inline PTX the kernels use, one wrapper per instruction (mma.sync, cp.async and its group waits, ldmatrix). The
// emulated build (MINI_VLLM_CUDA_EMULATED) gives each its twin in csrc/emu, which computes the same instruction
// on the CPU.
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

// cp.async.cg.shared.global: 16 bytes from global to shared memory without passing through registers (L2 only), done
// by the cp_async_wait that covers its group; bytes past src_bytes (0 or 16) are zeros, and with src_bytes 0 `src` is
// not read. Both addresses 16-byte aligned. Before sm_80 (no cp.async) it is a plain copy, done at once.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
#if defined(MINI_VLLM_CUDA_EMULATED)
  ::mvllm::emu::cp_async(dst, src, 16, src_bytes);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned d = unsigned(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes));
#elif defined(__CUDA_ARCH__)
  *static_cast<uint4*>(dst) = src_bytes ? *static_cast<const uint4*>(src) : make_uint4(0, 0, 0, 0);
#endif
}

// cp.async.commit_group: closes this thread's open group of copies.
__device__ __forceinline__ void cp_async_commit() {
#if defined(MINI_VLLM_CUDA_EMULATED)
  ::mvllm::emu::cp_async_commit();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// cp.async.wait_group N: waits until at most the N most recent groups of this thread are in flight. Other threads'
// copies need a __syncthreads after it before they are read.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(MINI_VLLM_CUDA_EMULATED)
  ::mvllm::emu::cp_async_wait(N);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// ldmatrix.sync.aligned.m8n8.x4.shared.b16: four 8 x 8 matrices of 16-bit elements from shared memory, lanes 8i..8i+7
// giving the row addresses (16 bytes each, 16-byte aligned) of matrix i; r[i] gets row lane/4, elements 2(lane%4) and
// 2(lane%4)+1 of matrix i: the A and B fragments of mma.sync m16n8k16. sm_75 and later.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
#if defined(MINI_VLLM_CUDA_EMULATED)
  ::mvllm::emu::ldmatrix(r, 4, row);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  const unsigned a = unsigned(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
}

// ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16: as ldmatrix_x4, each matrix transposed: r[i] gets rows 2(lane%4)
// and 2(lane%4)+1 of column lane/4 (the B fragment of mma.sync from a row-major [k][n] tile, e.g. V in attention).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
#if defined(MINI_VLLM_CUDA_EMULATED)
  ::mvllm::emu::ldmatrix(r, 4, row, true);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  const unsigned a = unsigned(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
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
