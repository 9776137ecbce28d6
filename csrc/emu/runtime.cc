// The emulated CUDA runtime: settings, errors, the device, memory (host allocations with guard zones, poisoned when
// new, within an emulated memory size), copies and events. Streams, captures and launches are in stream.cc.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "internal.h"

namespace mvllm::emu {
namespace {

// Bytes before and after each allocation (a page: a write one KV slot before a cache lands in it), and the alignment
// cudaMalloc gives (the runtime's is 256).
constexpr size_t kGuard = 4096;
constexpr unsigned char kGuardByte = 0xa5;

size_t parse_bytes(const char* s, size_t fallback) {
  if (!s || !*s) return fallback;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  double unit = 1;
  switch (end && *end ? (*end | 0x20) : 0) {
    case 'k': unit = 1024.0; break;
    case 'm': unit = 1024.0 * 1024; break;
    case 'g': unit = 1024.0 * 1024 * 1024; break;
    default: break;
  }
  return v > 0 ? size_t(v * unit) : fallback;
}

struct Alloc {
  size_t bytes;
  bool host;   // cudaMallocHost: not counted in the device's memory
  int device;  // the current device when it was allocated
};

constexpr int kMaxDevices = 8;

std::mutex g_mem;
std::map<uintptr_t, Alloc> g_allocs;  // by start of the user range
size_t g_used[kMaxDevices] = {};

thread_local cudaError_t t_last = cudaSuccess;
thread_local std::string t_last_what;
thread_local cudaError_t t_what_code = cudaSuccess;
thread_local int t_device = 0;

uint64_t g_digest = 0xcbf29ce484222325ull;  // FNV-1a over every device-to-host byte
std::mutex g_digest_m;

int g_digest_fd = -1;  // MINI_VLLM_EMU_DIGEST, opened at the first device-to-host copy

const Alloc* find(uintptr_t p, uintptr_t* base) {
  auto it = g_allocs.upper_bound(p);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  if (p >= it->first + it->second.bytes + (it->second.bytes == 0)) return nullptr;
  *base = it->first;
  return &it->second;
}

bool guards_intact(uintptr_t base, const Alloc& a, std::string* why) {
  const auto* lo = reinterpret_cast<const unsigned char*>(base - kGuard);
  const auto* hi = reinterpret_cast<const unsigned char*>(base + a.bytes);
  for (size_t i = 0; i < kGuard; ++i) {
    if (lo[i] != kGuardByte || hi[i] != kGuardByte) {
      char at[32];
      std::snprintf(at, sizeof at, "%#llx", static_cast<unsigned long long>(base));
      *why = "a write outside the " + std::to_string(a.bytes) + "-byte allocation at " + at + " (its guard zone " +
             (lo[i] != kGuardByte ? "before" : "after") + " it was overwritten)";
      return false;
    }
  }
  return true;
}

cudaError_t ok() { return cudaSuccess; }

}  // namespace

const Settings& settings() {
  static const Settings s = [] {
    Settings r;
    if (const char* a = std::getenv("MINI_VLLM_EMU_ARCH"); a && *a) r.arch = std::atoi(a);
    if (r.arch < 50 || r.arch > 120) r.arch = 90;
    if (const char* a = std::getenv("MINI_VLLM_EMU_SEED"); a && *a) r.seed = std::strtoull(a, nullptr, 10);
    unsigned hw = std::thread::hardware_concurrency();
    r.threads = hw ? int(hw) : 1;
    if (const char* a = std::getenv("MINI_VLLM_EMU_THREADS"); a && std::atoi(a) > 0) r.threads = std::atoi(a);
    if (const char* a = std::getenv("MINI_VLLM_EMU_SMS"); a && std::atoi(a) > 0) r.sms = std::atoi(a);
    r.memory = parse_bytes(std::getenv("MINI_VLLM_EMU_MEMORY"), r.memory);
    if (const char* a = std::getenv("MINI_VLLM_EMU_DIGEST")) r.digest_file = a;
    if (const char* a = std::getenv("MINI_VLLM_EMU_DEVICES"); a && std::atoi(a) > 0)
      r.devices = std::min(std::atoi(a), kMaxDevices);
    return r;
  }();
  return s;
}

cudaError_t set_error(cudaError_t code, const std::string& what) {
  if (code == cudaSuccess) return code;
  t_last = code;
  t_what_code = code;
  t_last_what = what;
  return code;
}

bool check_device(const void* p, std::string* why) {
  std::lock_guard<std::mutex> lock(g_mem);
  uintptr_t base = 0;
  const Alloc* a = find(reinterpret_cast<uintptr_t>(p), &base);
  if (!a || a->host || a->device == t_device) return true;  // not ours to judge (check_range reports a bad pointer)
  *why = "is memory of device " + std::to_string(a->device) + ", used on device " + std::to_string(t_device) +
         " (no peer access)";
  return false;
}

int current_device() { return t_device; }

bool check_range(const void* p, size_t bytes, std::string* why) {
  std::lock_guard<std::mutex> lock(g_mem);
  uintptr_t base = 0;
  const auto u = reinterpret_cast<uintptr_t>(p);
  const Alloc* a = find(u, &base);
  if (!a) {
    *why = "points at no live device allocation (freed, never allocated, or host memory)";
    return false;
  }
  if (u + bytes > base + a->bytes) {
    *why = "runs " + std::to_string(u + bytes - base - a->bytes) + " bytes past the end of its " +
           std::to_string(a->bytes) + "-byte allocation";
    return false;
  }
  return true;
}

bool check_guards(const KernelCall& call, std::string* why) {
  std::lock_guard<std::mutex> lock(g_mem);
  for (const void* p : call.pointers) {
    uintptr_t base = 0;
    const Alloc* a = p ? find(reinterpret_cast<uintptr_t>(p), &base) : nullptr;
    if (a && !guards_intact(base, *a, why)) return false;
  }
  return true;
}

void digest(const void* p, size_t bytes) {
  if (settings().digest_file.empty()) return;
  std::lock_guard<std::mutex> lock(g_digest_m);
  const auto* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < bytes; ++i) g_digest = (g_digest ^ c[i]) * 0x100000001b3ull;
  // The file always holds the digest so far (no exit hook: Node does not run a loaded addon's destructors), and the
  // process that wrote it: a child process that inherits the variable writes its own, which test/emu/run.mjs refuses.
  if (g_digest_fd < 0) g_digest_fd = open(settings().digest_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  char text[48];
  const int n = std::snprintf(text, sizeof text, "%016llx %d\n", static_cast<unsigned long long>(g_digest),
                              static_cast<int>(getpid()));
  if (g_digest_fd >= 0 && pwrite(g_digest_fd, text, size_t(n), 0) != n) close(g_digest_fd), g_digest_fd = -2;
}

}  // namespace mvllm::emu

using namespace mvllm::emu;  // NOLINT: the runtime API is global, as CUDA's

cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  const char* base = "unknown error";
  switch (err) {
    case cudaSuccess: base = "no error"; break;
    case cudaErrorInvalidValue: base = "invalid argument"; break;
    case cudaErrorMemoryAllocation: base = "out of memory"; break;
    case cudaErrorInvalidConfiguration: base = "invalid configuration argument"; break;
    case cudaErrorInvalidDevicePointer: base = "invalid device pointer"; break;
    case cudaErrorInvalidResourceHandle: base = "invalid resource handle"; break;
    case cudaErrorIllegalState: base = "the operation cannot be performed in the present state"; break;
    case cudaErrorNotReady: base = "device not ready"; break;
    case cudaErrorIllegalAddress: base = "an illegal memory access was encountered"; break;
    case cudaErrorLaunchOutOfResources: base = "too many resources requested for launch"; break;
    case cudaErrorMisalignedAddress: base = "misaligned address"; break;
    case cudaErrorLaunchFailure: base = "unspecified launch failure"; break;
    case cudaErrorStreamCaptureUnsupported: base = "operation not permitted when stream is capturing"; break;
    case cudaErrorStreamCaptureInvalidated: base = "operation failed due to a previous error during capture"; break;
    case cudaErrorStreamCaptureWrongThread:
      base = "operation not permitted on an event last recorded in a capturing stream";
      break;
    case cudaErrorNoDevice: base = "no CUDA-capable device is detected"; break;
    case cudaErrorInvalidDevice: base = "invalid device ordinal"; break;
  }
  if (err != t_what_code || t_last_what.empty()) return base;
  thread_local std::string text;
  text = std::string(base) + " [emulated device: " + t_last_what + "]";
  return text.c_str();
}

cudaError_t cudaRuntimeGetVersion(int* v) { return *v = 13000, ok(); }
cudaError_t cudaDriverGetVersion(int* v) { return *v = 0, ok(); }
cudaError_t cudaGetDeviceCount(int* n) { return *n = settings().devices, ok(); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device < 0 || device >= settings().devices)
    return set_error(cudaErrorInvalidDevice, "device " + std::to_string(device) + " does not exist");
  std::memset(p, 0, sizeof *p);
  const Settings& s = settings();
  std::snprintf(p->name, sizeof p->name, "mini-vllm emulated CUDA device (sm_%d, %d SMs, on %d CPU threads)", s.arch,
                s.sms, s.threads);
  p->totalGlobalMem = s.memory;
  p->sharedMemPerBlock = 48 << 10;
  p->sharedMemPerBlockOptin = 227 << 10;
  p->major = s.arch / 10;
  p->minor = s.arch % 10;
  p->multiProcessorCount = s.sms;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->warpSize = 32;
  return ok();
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device < 0 || device >= settings().devices)
    return set_error(cudaErrorInvalidDevice, "device " + std::to_string(device) + " does not exist");
  switch (attr) {
    case cudaDevAttrClockRate: *value = 1980000; break;        // kHz
    case cudaDevAttrMemoryClockRate: *value = 2619000; break;  // kHz (HBM3, double data rate)
    case cudaDevAttrGlobalMemoryBusWidth: *value = 5120; break;
    case cudaDevAttrMultiProcessorCount: *value = settings().sms; break;
    default: return set_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " + std::to_string(int(attr)));
  }
  return ok();
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= settings().devices)
    return set_error(cudaErrorInvalidDevice, "device " + std::to_string(device) + " does not exist");
  t_device = device;
  return ok();
}
cudaError_t cudaGetDevice(int* device) { return *device = t_device, ok(); }

namespace mvllm::emu {
// Allocation, shared by cudaMalloc and cudaMallocHost (stream.cc refuses cudaMalloc during a capture first).
cudaError_t allocate(void** p, size_t bytes, bool host) {
  *p = nullptr;
  std::lock_guard<std::mutex> lock(g_mem);
  size_t& used = g_used[t_device];
  if (!host && bytes > settings().memory - used)
    return set_error(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes with " +
                                                    std::to_string(settings().memory - used) + " of " +
                                                    std::to_string(settings().memory) +
                                                    " free (MINI_VLLM_EMU_MEMORY sets the size)");
  // aligned_alloc takes a multiple of the alignment: the back guard runs to that multiple (kGuard bytes at least)
  const size_t total = (bytes + 3 * kGuard - 1) / kGuard * kGuard;
  auto* raw = static_cast<unsigned char*>(std::aligned_alloc(kGuard, total));
  if (!raw) return set_error(cudaErrorMemoryAllocation, "the host could not back the allocation");
  std::memset(raw, kGuardByte, kGuard);
  std::memset(raw + kGuard, 0xff, bytes);  // poison: NaN in every float dtype, -1 in int32
  std::memset(raw + kGuard + bytes, kGuardByte, total - kGuard - bytes);
  *p = raw + kGuard;
  g_allocs[reinterpret_cast<uintptr_t>(*p)] = Alloc{bytes, host, t_device};
  if (!host) used += bytes;
  return cudaSuccess;
}

cudaError_t deallocate(void* p, bool host) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mem);
  auto it = g_allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_allocs.end() || it->second.host != host)
    return set_error(cudaErrorInvalidDevicePointer, "free of a pointer that is not the start of a live allocation");
  std::string why;
  const bool intact = guards_intact(it->first, it->second, &why);
  if (!host) g_used[it->second.device] -= it->second.bytes;
  g_allocs.erase(it);
  std::free(static_cast<unsigned char*>(p) - kGuard);
  if (!intact) return set_error(cudaErrorIllegalAddress, "found when freeing it: " + why);
  return cudaSuccess;
}

size_t used_memory() {
  std::lock_guard<std::mutex> lock(g_mem);
  return g_used[t_device];
}
}  // namespace mvllm::emu

cudaError_t cudaMallocHost(void** p, size_t bytes) { return allocate(p, bytes, true); }
cudaError_t cudaFreeHost(void* p) { return deallocate(p, true); }

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *total_bytes = settings().memory;
  *free_bytes = settings().memory - used_memory();
  return ok();
}
