// The CUDA device language on the CPU: keywords, built-in variables, barriers, warp primitives, atomics, math, and the
// launch of a __global__ function. Each CUDA thread is a fiber (scheduler.cc); a block's fibers run on one CPU thread
// and share its __shared__ memory (thread_local), and the blocks of a grid spread over the CPU's threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "half.h"
#include "runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// One copy per CPU thread, and a CPU thread runs one block at a time: per-block shared memory.
#define __shared__ static thread_local

constexpr int warpSize = 32;

struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
struct alignas(8) float2 {
  float x, y;
};

namespace mvllm::emu {

// What a CUDA thread reads of itself. Each fiber's stack is kFiberStackBytes long and aligned to that size, and starts
// with its ThreadVars: the running thread finds them from its stack pointer, without thread-local storage (which a
// shared library reaches through a call, __tls_get_addr, on every access).
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kFiberStackBytes = size_t(512) << 10;  // instrumented frames are several times larger
#else
constexpr size_t kFiberStackBytes = size_t(64) << 10;
#endif
struct ThreadVars {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
  char* dynamic_smem;
  void* fiber;  // the scheduler's own records of the thread and its block
  void* block;
};
static_assert(sizeof(ThreadVars) <= 128, "a fiber stack keeps 128 bytes for its ThreadVars");
__attribute__((always_inline)) inline ThreadVars& vars() {
  const auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  return *reinterpret_cast<ThreadVars*>(sp & ~uintptr_t(kFiberStackBytes - 1));
}

void syncthreads();
bool in_kernel();  // whether this CPU thread is running a CUDA thread now
int arch();        // the emulated __CUDA_ARCH__ / 10 (90 unless MINI_VLLM_EMU_ARCH says otherwise)
// Stops the kernel: the launch fails with cudaErrorLaunchFailure (or `code`) and this text, naming the kernel.
[[noreturn]] void fault(cudaError_t code, const char* what);

enum class WarpOpKind : uint8_t {
  Shfl,
  ShflUp,
  ShflDown,
  ShflXor,
  Ballot,
  Any,
  All,
  SyncWarp,
  MmaF16,
  MmaBf16,
  LdMatrix
};
// One lane's part in a warp-collective operation; the lanes of `mask` meet, then each gets its result.
struct WarpArgs {
  WarpOpKind kind;
  unsigned mask;
  uint64_t value;  // shuffles: the bits sent; ballot/any/all: the predicate
  int arg;         // shuffles: srcLane, delta or laneMask
  int width;
  const uint32_t* a;  // mma: A fragment (4 regs), B fragment (2), accumulator (4 fp32, updated)
  const uint32_t* b;
  float* d;
  uint32_t* regs;  // ldmatrix: the lane's registers (arg matrices; value: the address of the lane's row)
};
uint64_t warp_op(WarpArgs& w);
unsigned active_mask();

// ---- launches ----
struct KernelCall {
  virtual ~KernelCall() = default;
  virtual void run() const = 0;       // runs the kernel body once, as the current CUDA thread
  std::vector<const void*> pointers;  // the pointer arguments, checked against live allocations at each launch
};
struct LaunchSpec {
  const void* func;
  const char* name;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
};
// Runs (or, during a capture, records) the launch; a failure is this thread's cudaGetLastError.
void submit(const LaunchSpec& spec, std::shared_ptr<const KernelCall> call);

template <typename... P>
class Call final : public KernelCall {
 public:
  template <typename... A>
  Call(void (*f)(P...), A&&... a) : f_(f), args_(std::forward<A>(a)...) {
    std::apply([&](const auto&... v) { (note(v), ...); }, args_);
  }
  void run() const override { std::apply(f_, args_); }

 private:
  template <typename V>
  void note(const V& v) {
    if constexpr (std::is_pointer_v<V>) pointers.push_back(static_cast<const void*>(v));
  }
  void (*f_)(P...);
  std::tuple<std::decay_t<P>...> args_;
};

template <typename... P>
struct Launcher {
  void (*f)(P...);
  LaunchSpec spec;
  template <typename... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    submit(spec, std::make_shared<Call<P...>>(f, std::forward<A>(a)...));
  }
};

template <typename... P>
Launcher<P...> launcher(void (*f)(P...), const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t st) {
  return Launcher<P...>{f, LaunchSpec{reinterpret_cast<const void*>(f), name, grid, block, smem, st}};
}

template <typename T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8, "warp shuffles move at most 8 bytes");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}
template <typename T>
T from_bits(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}
template <typename T>
T shuffle(WarpOpKind kind, unsigned mask, T v, int arg, int width) {
  WarpArgs w{kind, mask, to_bits(v), arg, width, nullptr, nullptr, nullptr, nullptr};
  return from_bits<T>(warp_op(w));
}
inline unsigned vote(WarpOpKind kind, unsigned mask, int pred) {
  WarpArgs w{kind, mask, uint64_t(pred != 0), 0, 32, nullptr, nullptr, nullptr, nullptr};
  return unsigned(warp_op(w));
}

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}: the warp's fragments, combined per the PTX ISA layout.
// ldmatrix.sync.aligned.m8n8.x{1,2,4}{.trans}.shared.b16: `row` is this lane's row address (lanes 8i..8i+7 give
// matrix i's eight rows of 16 bytes); regs[i] gets row lane/4, elements 2(lane%4) and 2(lane%4)+1 of matrix i, or
// with .trans (the matrix transposed) rows 2(lane%4) and 2(lane%4)+1 of column lane/4.
inline void ldmatrix(uint32_t* regs, int matrices, const void* row, bool trans = false) {
  WarpArgs w{WarpOpKind::LdMatrix,
             0xffffffffu,
             to_bits(row),
             matrices | (trans ? 0x100 : 0),
             32,
             nullptr,
             nullptr,
             nullptr,
             regs};
  warp_op(w);
}

// cp.async: a copy of `bytes` (4, 8 or 16) from global to shared memory that completes by the wait that covers its
// group, not before (a read of the destination before that wait sees what was there); bytes past src_bytes are
// zeros. commit closes the thread's open group; wait(n) completes all but the n most recent groups.
void cp_async(void* dst, const void* src, int bytes, int src_bytes);
void cp_async_commit();
void cp_async_wait(int n);
void cp_async_wait_all();

template <typename T>
void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, "mma.sync takes f16 or bf16");
  WarpArgs w{
      std::is_same_v<T, __half> ? WarpOpKind::MmaF16 : WarpOpKind::MmaBf16, 0xffffffffu, 0, 0, 32, a, b, d, nullptr};
  warp_op(w);
}

}  // namespace mvllm::emu

#define threadIdx (static_cast<const uint3&>(::mvllm::emu::vars().thread_idx))
#define blockIdx (static_cast<const uint3&>(::mvllm::emu::vars().block_idx))
#define blockDim (static_cast<const dim3&>(::mvllm::emu::vars().block_dim))
#define gridDim (static_cast<const dim3&>(::mvllm::emu::vars().grid_dim))

inline void __syncthreads() { ::mvllm::emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::mvllm::emu::vote(::mvllm::emu::WarpOpKind::SyncWarp, mask, 1); }
template <typename T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize) {
  return ::mvllm::emu::shuffle(::mvllm::emu::WarpOpKind::Shfl, mask, v, src_lane, width);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  return ::mvllm::emu::shuffle(::mvllm::emu::WarpOpKind::ShflUp, mask, v, int(delta), width);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  return ::mvllm::emu::shuffle(::mvllm::emu::WarpOpKind::ShflDown, mask, v, int(delta), width);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
  return ::mvllm::emu::shuffle(::mvllm::emu::WarpOpKind::ShflXor, mask, v, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return ::mvllm::emu::vote(::mvllm::emu::WarpOpKind::Ballot, mask, pred);
}
inline int __any_sync(unsigned mask, int pred) {
  return int(::mvllm::emu::vote(::mvllm::emu::WarpOpKind::Any, mask, pred));
}
inline int __all_sync(unsigned mask, int pred) {
  return int(::mvllm::emu::vote(::mvllm::emu::WarpOpKind::All, mask, pred));
}
inline unsigned __activemask() { return ::mvllm::emu::active_mask(); }
[[noreturn]] inline void __trap() { ::mvllm::emu::fault(cudaErrorLaunchFailure, "__trap() called"); }

// Atomics: blocks run on several CPU threads at once, so these are real atomics.
template <typename T>
T atomicOr(T* p, T v) {
  return __atomic_fetch_or(p, v, __ATOMIC_RELAXED);
}
template <typename T>
T atomicAnd(T* p, T v) {
  return __atomic_fetch_and(p, v, __ATOMIC_RELAXED);
}
template <typename T>
T atomicExch(T* p, T v) {
  return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}
template <typename T>
T atomicCAS(T* p, T expected, T desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return expected;
}
template <typename T>
T atomicAdd(T* p, T v) {
  if constexpr (std::is_integral_v<T>) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
  } else {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(p, &old, T(old + v), false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
  }
}
template <typename T>
T atomicMax(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}

// Math. __expf is the device's ex2.approx(x · log2 e): the product is rounded as on the device, the power of two is
// exact here (the device's ex2.approx is within 2 ulp). rsqrtf is exact here (the device's within 2 ulp).
inline float __expf(float x) { return std::exp2(x * 1.44269504088896341f); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }

// The launch macro's emulation twin (csrc/cuda/launch.cuh): a call that takes the kernel's arguments.
#define MVLLM_EMU_LAUNCH(grid, block, smem, stream, ...) \
  ::mvllm::emu::launcher(__VA_ARGS__, #__VA_ARGS__, grid, block, smem, stream)
