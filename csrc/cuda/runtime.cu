// Device discovery, memory, the per-device stream, CUDA errors as exceptions, and device-side checks.
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

struct DeviceState {
  cudaStream_t stream = nullptr;
  unsigned* flags = nullptr;       // device word of AssertBit failures
  unsigned* host_flags = nullptr;  // pinned copy read after each synchronize
  cudaEvent_t t0 = nullptr, t1 = nullptr;
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
  uint64_t scratch_generation = 0;          // bumped whenever scratch moves (graphs captured before then are stale)
  std::vector<cudaEvent_t> profile_events;  // the profiler's pool, reused from 0 after profile_reset
  size_t profile_next = 0;
  int sms = 0;
  size_t smem_optin = 0;
  std::once_flag init;
};

DeviceState g_state[64];

DeviceState& state(int device) {
  require_device(device);
  DeviceState& s = g_state[device];
  check(cudaSetDevice(device), "cudaSetDevice");
  // call_once retries if the body throws, so a failed first use does not poison the device.
  std::call_once(s.init, [&] {
    check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaMalloc(&s.flags, sizeof(unsigned)), "cudaMalloc(assert flags)");
    // NOTE: on our stream, not the legacy default one, which a non-blocking stream does not wait for.
    check(cudaMemsetAsync(s.flags, 0, sizeof(unsigned), s.stream), "cudaMemset(assert flags)");
    check(cudaMallocHost(&s.host_flags, sizeof(unsigned)), "cudaMallocHost(assert flags)");
    *s.host_flags = 0;
    check(cudaEventCreate(&s.t0), "cudaEventCreate");
    check(cudaEventCreate(&s.t1), "cudaEventCreate");
    cudaDeviceProp p;
    check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    s.sms = std::max(1, p.multiProcessorCount);
    s.smem_optin = p.sharedMemPerBlockOptin;
  });
  return s;
}

void sync_and_check(int device, DeviceState& s) {
  check(cudaMemcpyAsync(s.host_flags, s.flags, sizeof(unsigned), cudaMemcpyDeviceToHost, s.stream),
        "cudaMemcpyAsync(assert flags)");
  check(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize");
  unsigned bits = *s.host_flags;
  if (bits) {
    *s.host_flags = 0;
    check(cudaMemsetAsync(s.flags, 0, sizeof(unsigned), s.stream), "cudaMemset(assert flags)");
    check(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize");
    if (bits & kRotaryPositionOutOfRange)
      fail(ErrorKind::Range, "rotaryEmbedding: a position was outside [0, maxPosition) (cosSinCache rows); found on ",
           "cuda:", device, " when synchronizing, those tokens were left unrotated");
    const char* where = " (found on the device when synchronizing)";
    if (bits & kSlotOutOfRange)
      fail(ErrorKind::Range, "reshapeAndCache: a slotMapping entry is past the cache; those tokens were not written",
           where);
    if (bits & kBlockIdOutOfRange)
      fail(ErrorKind::Range, "pagedAttention: a blockTables entry is outside [0, numBlocks)", where);
    if (bits & kAttentionMetaInvalid)
      fail(ErrorKind::Range, "pagedAttention: inconsistent seqLens / queryStartLoc (queryStartLoc must rise from 0 ",
           "to numTokens; each seqLen at least its query length, at most the block tables' capacity and maxSeqLen)",
           where);
    if (bits & kIndexOutOfRange)
      fail(ErrorKind::Range, "embedding / gatherRows: an id or index is outside the table; those rows were zeroed",
           where);
    if (bits & kMaskRowOutOfRange)
      fail(ErrorKind::Range, "applyTokenBitmask: a rows entry is outside the logits' rows; nothing was masked there",
           where);
    fail(ErrorKind::DeviceAssert, "a device-side check failed on cuda:", device, " (bits 0x", std::hex, bits, ")");
  }
}

}  // namespace

void throw_cuda(cudaError_t err, const char* what) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  if (err == cudaErrorMemoryAllocation)
    fail(ErrorKind::OutOfMemory, what, ": CUDA out of memory (", cudaGetErrorString(err), ")");
  fail(ErrorKind::Cuda, what, ": ", cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

const Report& query() {
  static Report report = [] {
    Report r;
    cudaRuntimeGetVersion(&r.runtime_version);
    cudaDriverGetVersion(&r.driver_version);
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      r.error = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
      cudaGetLastError();
      return r;
    }
    for (int i = 0; i < n && i < 64; ++i) {
      cudaDeviceProp p;
      if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
      DeviceInfo d{p.name, p.major, p.minor, p.totalGlobalMem, p.multiProcessorCount};
      // Attributes, not cudaDeviceProp fields: CUDA 13 dropped the clock fields from the struct.
      auto attr = [&](cudaDeviceAttr a, int* v) {
        if (cudaDeviceGetAttribute(v, a, i) != cudaSuccess) *v = 0, cudaGetLastError();
      };
      attr(cudaDevAttrClockRate, &d.clock_khz);
      attr(cudaDevAttrMemoryClockRate, &d.memory_clock_khz);
      attr(cudaDevAttrGlobalMemoryBusWidth, &d.memory_bus_bits);
      r.devices.push_back(d);
    }
    r.available = !r.devices.empty();
    if (!r.available) r.error = "no CUDA device found";
    return r;
  }();
  return report;
}

void require_device(int index) {
  const Report& r = query();
  if (!r.available) fail(ErrorKind::Unsupported, "CUDA is not available: ", r.error);
  if (index < 0 || index >= int(r.devices.size()))
    fail(ErrorKind::Range, "cuda:", index, " does not exist (", r.devices.size(), " device(s))");
}

cudaStream_t stream(int device) { return state(device).stream; }

void* scratch(int device, size_t bytes) {
  DeviceState& s = state(device);
  if (bytes > s.scratch_bytes) {
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    check(cudaStreamIsCapturing(s.stream, &capturing), "cudaStreamIsCapturing");
    if (capturing != cudaStreamCaptureStatusNone)
      fail(ErrorKind::Range, "the device scratch (split-KV attention, split-K GEMM partials) must grow to ", bytes,
           " bytes during a CUDA graph capture; run the largest shape once before capturing");
    // NOTE: the old buffer may still be in use by queued kernels; cudaFree waits for them.
    if (s.scratch) check(cudaFree(s.scratch), "cudaFree(scratch)");
    s.scratch = nullptr;
    s.scratch_bytes = 0;
    const size_t grown = std::max(bytes, size_t(4) << 20);
    check(cudaMalloc(&s.scratch, grown), "cudaMalloc(attention scratch)");
    s.scratch_bytes = grown;
    ++s.scratch_generation;
  }
  return s.scratch;
}
uint64_t scratch_generation(int device) { return state(device).scratch_generation; }
unsigned* assert_flags(int device) { return state(device).flags; }
int sm_count(int device) { return state(device).sms; }
size_t smem_optin(int device) { return state(device).smem_optin; }

void* alloc(int device, size_t bytes) {
  state(device);
  void* p = nullptr;
  check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
  return p;
}

void release(int device, void* p) noexcept {
  if (!p || device < 0 || device >= 64) return;
  // cudaFree waits for work using the memory; at process exit the runtime may already be gone: ignore.
  if (cudaSetDevice(device) == cudaSuccess) cudaFree(p);
  cudaGetLastError();
}

void memcpy_htod(int device, void* dst, const void* src, size_t bytes) {
  DeviceState& s = state(device);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s.stream), "cudaMemcpy(host to device)");
  // The host buffer may be freed as soon as we return: wait for the copy.
  check(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize");
}

void memcpy_dtoh(int device, void* dst, const void* src, size_t bytes) {
  DeviceState& s = state(device);
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s.stream), "cudaMemcpy(device to host)");
  sync_and_check(device, s);
}

void synchronize(int device) { sync_and_check(device, state(device)); }

void mem_info(int device, size_t* free_bytes, size_t* total_bytes) {
  state(device);
  check(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
}

void timer_start(int device) {
  DeviceState& s = state(device);
  check(cudaEventRecord(s.t0, s.stream), "cudaEventRecord");
}

double timer_stop(int device) {
  DeviceState& s = state(device);
  check(cudaEventRecord(s.t1, s.stream), "cudaEventRecord");
  sync_and_check(device, s);
  float ms = 0;
  check(cudaEventElapsedTime(&ms, s.t0, s.t1), "cudaEventElapsedTime");
  return ms;
}

int profile_event(int device) {
  DeviceState& s = state(device);
  if (s.profile_next == s.profile_events.size()) {
    cudaEvent_t e = nullptr;
    check(cudaEventCreate(&e), "cudaEventCreate");
    s.profile_events.push_back(e);
  }
  check(cudaEventRecord(s.profile_events[s.profile_next], s.stream), "cudaEventRecord");
  return int(s.profile_next++);
}

double profile_elapsed(int device, int a, int b) {
  DeviceState& s = state(device);
  const auto n = int(s.profile_next);
  if (a < 0 || a >= n || b < 0 || b >= n)
    fail(ErrorKind::Range, "profileElapsed: event ids must be in [0, ", n, "), got ", a, " and ", b);
  check(cudaEventSynchronize(s.profile_events[size_t(b)]), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, s.profile_events[size_t(a)], s.profile_events[size_t(b)]), "cudaEventElapsedTime");
  return ms;
}

void profile_reset(int device) { state(device).profile_next = 0; }

void range_push(const char* name) { nvtxRangePushA(name); }
void range_pop() { nvtxRangePop(); }

}  // namespace mvllm::cuda
