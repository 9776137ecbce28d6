// Probes of the emulated device, for its own tests (test/emu): small kernels that exercise one documented behaviour
// each (a warp primitive, mma.sync, a conversion, a fault the emulator must report) and hand back what they computed.
// Only the emulated build has them (addon.emuProbe).
#include <string>
#include <vector>

#include "../core/error.h"
#include "../cuda/common.cuh"
#include "../cuda/ptx.cuh"
#include "internal.h"

namespace mvllm::emu {
namespace {

using cuda::Pack;

// ---- kernels ----

// grid 1, block 32: lane l gives the address of shared row 31 - l (8 16-bit values each, from `rows`); out[l * 8 + 2i
// + h] is half h of register i of ldmatrix .x4 (.trans when `trans`).
__global__ void ldmatrix_kernel(float* out, const float* rows, int trans) {
  __shared__ __align__(16) uint16_t tile[32][8];
  const int lane = threadIdx.x;
  for (int e = 0; e < 8; ++e) tile[lane][e] = uint16_t(rows[lane * 8 + e]);
  __syncthreads();
  uint32_t r[4];
  if (trans)
    cuda::ldmatrix_x4_trans(r, &tile[31 - lane][0]);
  else
    cuda::ldmatrix_x4(r, &tile[31 - lane][0]);
  for (int i = 0; i < 4; ++i) {
    out[lane * 8 + 2 * i] = float(r[i] & 0xffffu);
    out[lane * 8 + 2 * i + 1] = float(r[i] >> 16);
  }
}

// grid 1, block 32: two groups of cp.async per thread (into a, then b; lanes l % 3 == 0 copy 0 source bytes, so
// zeros), read back before any wait, after wait_group 1 and after wait_group 0. out[l * 4 + ...]: a before, a after
// the first wait, b after the first wait, b after the second.
__global__ void cp_async_kernel(float* out, const float* src) {
  __shared__ __align__(16) float a[32][4], b[32][4];
  const int lane = threadIdx.x;
  for (int e = 0; e < 4; ++e) a[lane][e] = b[lane][e] = -1.f;
  cuda::cp_async16(&a[lane][0], src + lane * 4, lane % 3 == 0 ? 0 : 16);
  cuda::cp_async_commit();
  cuda::cp_async16(&b[lane][0], src + 128 + lane * 4, 16);
  cuda::cp_async_commit();
  out[lane * 4] = a[lane][1];
  cuda::cp_async_wait<1>();
  out[lane * 4 + 1] = a[lane][1];
  out[lane * 4 + 2] = b[lane][1];
  cuda::cp_async_wait<0>();
  out[lane * 4 + 3] = b[lane][1];
}

// grid 1, block `n`: out[lane] = the shuffle of (lane * 10 + 1) with `arg`, `width`.
__global__ void shfl_kernel(float* out, int kind, int arg, int width) {
  const float v = float(threadIdx.x * 10 + 1);
  float r = 0;
  switch (kind) {
    case 0: r = __shfl_sync(0xffffffffu, v, arg, width); break;
    case 1: r = __shfl_up_sync(0xffffffffu, v, unsigned(arg), width); break;
    case 2: r = __shfl_down_sync(0xffffffffu, v, unsigned(arg), width); break;
    default: r = __shfl_xor_sync(0xffffffffu, v, arg, width); break;
  }
  out[threadIdx.x] = r;
}

// grid 1, block 32: out[lane] = ballot / any / all of bit `lane` of `preds`, with `mask` (lanes outside it return).
// A 32-bit mask goes out as two 16-bit halves (a float holds 24 bits exactly).
__global__ void vote_kernel(float* out, unsigned preds, unsigned mask) {
  const unsigned lane = threadIdx.x;
  if (!(mask >> lane & 1)) return;
  const int p = int(preds >> lane & 1);
  const unsigned ballot = __ballot_sync(mask, p);
  const int any = __any_sync(mask, p), all = __all_sync(mask, p);
  out[lane * 4] = float(ballot & 0xffffu);
  out[lane * 4 + 1] = float(ballot >> 16);
  out[lane * 4 + 2] = float(any);
  out[lane * 4 + 3] = float(all);
}

// grid 1, block 32: lanes at or past `live` return; the rest read __activemask().
__global__ void activemask_kernel(float* out, int live) {
  if (int(threadIdx.x) >= live) return;
  __syncwarp(live == 32 ? 0xffffffffu : (1u << live) - 1);  // by now the others have exited
  const unsigned m = __activemask();
  out[2 * threadIdx.x] = float(m & 0xffffu);
  out[2 * threadIdx.x + 1] = float(m >> 16);
}

// grid 1, block 32: d (16 x 8, fp32) = a (16 x 16) · b (16 x 8) + c, through mma16816 with the fragment layout the
// GEMM kernel loads (a row-major, b stored as bᵀ row-major, i.e. column-major b).
template <typename T>
__global__ void mma_kernel(float* d, const T* a, const T* bt, const float* c) {
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  auto pair = [](const T* p) { return *reinterpret_cast<const uint32_t*>(p); };
  const uint32_t af[4] = {pair(a + g * 16 + 2 * t), pair(a + (g + 8) * 16 + 2 * t), pair(a + g * 16 + 2 * t + 8),
                          pair(a + (g + 8) * 16 + 2 * t + 8)};
  const uint32_t bf[2] = {pair(bt + g * 16 + 2 * t), pair(bt + g * 16 + 2 * t + 8)};
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  cuda::mma16816<T>(acc, af, bf);
  d[g * 8 + 2 * t] = acc[0];
  d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2];
  d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

// grid-stride: bits[i] = the f16 bits and the bf16 bits of x[i], converted on the device.
__global__ void convert_kernel(float* bits, const float* x, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const __half h = cuda::from_f<__half>(x[i]);
    const __nv_bfloat16 b = cuda::from_f<__nv_bfloat16>(x[i]);
    bits[2 * i] = float(reinterpret_cast<const uint16_t&>(h));
    bits[2 * i + 1] = float(reinterpret_cast<const uint16_t&>(b));
  }
}

// grid 1, block 64: lane 0 waits in a shuffle for lanes that wait at a barrier: nothing can go on.
__global__ void deadlock_kernel(float* out) {
  float v = 1;
  if (threadIdx.x == 0)
    v = __shfl_sync(0xffffffffu, v, 1);
  else
    __syncthreads();
  out[threadIdx.x] = v;
}

// grid 1, block 32: the upper half-warp exits before a full-mask shuffle.
__global__ void exited_lane_kernel(float* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}

// grid 1, block `n` (not a multiple of 32): a full-mask warp sum in the partial last warp.
__global__ void partial_warp_kernel(float* out) { out[threadIdx.x] = cuda::warp_sum(1.f); }

// grid 1, block 32: a 16-byte load from a float pointer advanced by one element.
__global__ void misaligned_kernel(float* out, const float* x) {
  const Pack<float, 4> p = *reinterpret_cast<const Pack<float, 4>*>(x + 1 + 4 * threadIdx.x);
  out[threadIdx.x] = p.v[0];
}

// grid 1, block n: writes out[0, n] (one element past a buffer of n).
__global__ void overflow_kernel(float* out, int n) {
  out[threadIdx.x] = 1;
  if (threadIdx.x == 0) out[n] = 1;
}

// grid 1, block n: each thread writes its slot of shared memory and reads its neighbour's, with or without the
// barrier between (without it, what a thread reads depends on the order threads run in).
__global__ void neighbour_kernel(float* out, int barrier) {
  __shared__ float s[256];
  s[threadIdx.x] = float(threadIdx.x) + float(blockIdx.x) * 1000.f;
  if (barrier) __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
  __syncthreads();
  s[threadIdx.x] = -1;  // what a later block would read without the barrier
}

__global__ void fill_kernel(float* out, float v) { out[threadIdx.x] = v; }

__global__ void dynamic_smem_kernel(float* out) {
  MVLLM_DYNAMIC_SHARED(float, smem);
  smem[threadIdx.x] = 2;
  __syncthreads();
  out[threadIdx.x] = smem[(threadIdx.x + 1) % blockDim.x];
}

// ---- host side ----

[[noreturn]] void launch_failed(const char* probe) {
  const cudaError_t e = cudaGetLastError();
  fail(e == cudaErrorMemoryAllocation ? ErrorKind::OutOfMemory : ErrorKind::Cuda, probe, ": ", cudaGetErrorName(e),
       ": ", cudaGetErrorString(e));
}

struct Buffer {
  float* p = nullptr;
  size_t n = 0;
  explicit Buffer(size_t count) : n(count) {
    if (cudaMalloc(&p, n * sizeof(float)) != cudaSuccess) launch_failed("cudaMalloc");
  }
  Buffer(const std::vector<float>& v) : Buffer(v.size()) {  // NOLINT
    cudaMemcpy(p, v.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  }
  ~Buffer() {
    cudaFree(p);
    cudaGetLastError();
  }
  std::vector<double> read() const {
    std::vector<float> h(n);
    cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost);
    return {h.begin(), h.end()};
  }
};

template <typename T>
struct Half {
  T* p = nullptr;
  explicit Half(const std::vector<double>& v) {
    std::vector<T> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = T(float(v[i]));
    cudaMalloc(&p, h.size() * sizeof(T));
    cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~Half() { cudaFree(p); }
};

std::vector<double> check(const char* probe, std::vector<double> out) {
  if (cudaPeekAtLastError() != cudaSuccess) launch_failed(probe);
  return out;
}

double arg(const std::vector<double>& a, size_t i) {
  if (i >= a.size()) fail(ErrorKind::Range, "emuProbe: argument ", i, " is missing");
  return a[i];
}

}  // namespace

// Runs probe `name`; throws the launch's error as the ops would (ErrorKind::Cuda with the emulator's account).
std::vector<double> probe(const std::string& name, const std::vector<double>& a) {
  cudaGetLastError();
  if (name == "shfl") {  // kind (0 idx, 1 up, 2 down, 3 xor), arg, width
    Buffer out(32);
    MVLLM_LAUNCH(1, 32, 0, nullptr, shfl_kernel)(out.p, int(arg(a, 0)), int(arg(a, 1)), int(arg(a, 2)));
    return check("shfl", out.read());
  }
  if (name == "vote") {  // preds, mask -> [ballot low 16 bits, high 16 bits, any, all] per lane
    Buffer out(std::vector<float>(128, -1.f));
    MVLLM_LAUNCH(1, 32, 0, nullptr, vote_kernel)(out.p, unsigned(arg(a, 0)), unsigned(arg(a, 1)));
    return check("vote", out.read());
  }
  if (name == "activemask") {  // live lanes -> [mask low 16 bits, high 16 bits] per lane
    Buffer out(std::vector<float>(64, -1.f));
    MVLLM_LAUNCH(1, 32, 0, nullptr, activemask_kernel)(out.p, int(arg(a, 0)));
    return check("activemask", out.read());
  }
  if (name == "mma") {  // bf16?, then a (256), bᵀ (128), c (128) -> d (128)
    if (a.size() != 1 + 256 + 128 + 128) fail(ErrorKind::Range, "emuProbe mma: expected 513 numbers");
    const std::vector<double> av(a.begin() + 1, a.begin() + 257), bv(a.begin() + 257, a.begin() + 385);
    Buffer c(std::vector<float>(a.begin() + 385, a.end())), d(128);
    if (a[0]) {
      Half<__nv_bfloat16> ah(av), bh(bv);
      MVLLM_LAUNCH(1, 32, 0, nullptr, mma_kernel<__nv_bfloat16>)(d.p, ah.p, bh.p, c.p);
    } else {
      Half<__half> ah(av), bh(bv);
      MVLLM_LAUNCH(1, 32, 0, nullptr, mma_kernel<__half>)(d.p, ah.p, bh.p, c.p);
    }
    return check("mma", d.read());
  }
  if (name == "ldmatrix") {  // trans?, 256 16-bit values (32 rows of 8) -> per lane 4 registers as 8 halves
    if (a.size() != 257) fail(ErrorKind::Range, "emuProbe ldmatrix: expected 257 numbers");
    Buffer rows(std::vector<float>(a.begin() + 1, a.end())), out(256);
    MVLLM_LAUNCH(1, 32, 0, nullptr, ldmatrix_kernel)(out.p, rows.p, int(a[0]));
    return check("ldmatrix", out.read());
  }
  if (name == "cpAsync") {  // -> per lane [a before, a after wait 1, b after wait 1, b after wait 0]
    std::vector<float> src(256);
    for (int i = 0; i < 256; ++i) src[size_t(i)] = float(i);
    Buffer in(src), out(128);
    MVLLM_LAUNCH(1, 32, 0, nullptr, cp_async_kernel)(out.p, in.p);
    return check("cpAsync", out.read());
  }
  if (name == "convert") {  // floats -> [f16 bits, bf16 bits] each
    Buffer x(std::vector<float>(a.begin(), a.end())), out(2 * a.size());
    MVLLM_LAUNCH(cuda::blocks_for(int64_t(a.size()), 64), 64, 0, nullptr, convert_kernel)(out.p, x.p, int(a.size()));
    return check("convert", out.read());
  }
  if (name == "deadlock" || name == "exitedLane" || name == "partialWarp") {
    Buffer out(64);
    if (name == "deadlock") MVLLM_LAUNCH(1, 64, 0, nullptr, deadlock_kernel)(out.p);
    if (name == "exitedLane") MVLLM_LAUNCH(1, 32, 0, nullptr, exited_lane_kernel)(out.p);
    if (name == "partialWarp") MVLLM_LAUNCH(1, 48, 0, nullptr, partial_warp_kernel)(out.p);
    return check(name.c_str(), out.read());
  }
  if (name == "misaligned") {
    Buffer x(std::vector<float>(160, 1.f)), out(32);
    MVLLM_LAUNCH(1, 32, 0, nullptr, misaligned_kernel)(out.p, x.p);
    return check("misaligned", out.read());
  }
  if (name == "overflow") {
    Buffer out(64);
    MVLLM_LAUNCH(1, 64, 0, nullptr, overflow_kernel)(out.p, 64);
    return check("overflow", out.read());
  }
  if (name == "neighbour") {  // barrier?, blocks -> out
    const int blocks = int(arg(a, 1));
    Buffer out(size_t(blocks) * 128);
    MVLLM_LAUNCH(blocks, 128, 0, nullptr, neighbour_kernel)(out.p, int(arg(a, 0)));
    return check("neighbour", out.read());
  }
  if (name == "launch") {  // grid x, grid y, block x, dynamic smem, opt-in (0 = none)
    Buffer out(1024);
    if (arg(a, 4) > 0)
      cudaFuncSetAttribute(dynamic_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(a[4]));
    MVLLM_LAUNCH(dim3(unsigned(arg(a, 0)), unsigned(arg(a, 1))), unsigned(arg(a, 2)), size_t(arg(a, 3)), nullptr,
                 dynamic_smem_kernel)(out.p);
    return check("launch", {out.read()[0]});
  }
  if (name == "crossDevice") {  // needs 2 devices -> error codes: launch, memset, stream of device 0 on device 1
    int devices = 0;
    cudaGetDeviceCount(&devices);
    if (devices < 2) fail(ErrorKind::Range, "emuProbe crossDevice: needs MINI_VLLM_EMU_DEVICES=2, got ", devices);
    cudaSetDevice(0);
    float* p = nullptr;
    cudaMalloc(&p, 64 * sizeof(float));
    cudaStream_t st0;
    cudaStreamCreate(&st0);
    cudaSetDevice(1);
    std::vector<double> codes;
    MVLLM_LAUNCH(1, 64, 0, nullptr, fill_kernel)(p, 1.f);
    codes.push_back(double(cudaGetLastError()));
    codes.push_back(double(cudaMemsetAsync(p, 0, 64 * sizeof(float), nullptr)));
    cudaGetLastError();
    float* q = nullptr;
    cudaMalloc(&q, 64 * sizeof(float));
    MVLLM_LAUNCH(1, 64, 0, st0, fill_kernel)(q, 1.f);
    codes.push_back(double(cudaGetLastError()));
    MVLLM_LAUNCH(1, 64, 0, nullptr, fill_kernel)(q, 1.f);  // its own memory on its own device: fine
    codes.push_back(double(cudaGetLastError()));
    cudaFree(q);
    cudaSetDevice(0);
    cudaStreamDestroy(st0);
    cudaFree(p);
    return codes;
  }
  if (name == "graphFreed") {  // capture a launch, free its buffer, replay
    cudaStream_t st;
    cudaStreamCreate(&st);
    float* p = nullptr;
    cudaMalloc(&p, 64 * sizeof(float));
    cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
    MVLLM_LAUNCH(1, 64, 0, st, fill_kernel)(p, 3.f);
    cudaGraph_t g;
    cudaStreamEndCapture(st, &g);
    cudaGraphExec_t exec;
    cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    const cudaError_t first = cudaGraphLaunch(exec, st);
    cudaFree(p);
    const cudaError_t second = cudaGraphLaunch(exec, st);
    const std::string what = cudaGetErrorString(second);
    cudaGetLastError();
    cudaGraphExecDestroy(exec);
    cudaStreamDestroy(st);
    if (first != cudaSuccess) fail(ErrorKind::Cuda, "graphFreed: the first replay failed");
    if (second != cudaSuccess) fail(ErrorKind::Cuda, "graphFreed: ", cudaGetErrorName(second), ": ", what);
    return {};
  }
  if (name == "captureRefusals") {  // each refused call's error code, then the capture's end
    cudaStream_t st;
    cudaStreamCreate(&st);
    std::vector<double> codes;
    float host[4] = {};
    float* p = nullptr;
    cudaMalloc(&p, sizeof host);
    auto attempt = [&](auto call) {
      cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
      codes.push_back(double(call()));
      cudaGraph_t g = nullptr;
      codes.push_back(double(cudaStreamEndCapture(st, &g)));
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
    };
    attempt([&] {
      void* q = nullptr;
      return cudaMalloc(&q, 16);
    });
    attempt([&] { return cudaStreamSynchronize(st); });
    attempt([&] { return cudaMemcpyAsync(p, host, sizeof host, cudaMemcpyHostToDevice, st); });
    attempt([&] { return cudaMemcpyAsync(host, p, sizeof host, cudaMemcpyDeviceToHost, st); });
    attempt([&] { return cudaMemsetAsync(p, 0, sizeof host, st); });  // allowed: recorded
    cudaFree(p);
    cudaStreamDestroy(st);
    return codes;
  }
  fail(ErrorKind::Range, "emuProbe: no probe named '", name, "'");
}

}  // namespace mvllm::emu
