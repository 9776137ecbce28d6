// The emulated runtime's streams: work runs in order as it is queued (a launch has finished when its call returns),
// events hold the time they were reached, and a capture records launches, device copies and sets into a graph that
// replays them with the captured arguments. What the real runtime refuses during a capture (allocation, freeing,
// synchronisation, host copies) fails here with the same error and invalidates the capture.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "internal.h"

namespace mvllm::emu {
cudaError_t allocate(void** p, size_t bytes, bool host);
cudaError_t deallocate(void* p, bool host);
}  // namespace mvllm::emu

struct CUevent_st {
  bool recorded = false;
  std::chrono::steady_clock::time_point at;
};

namespace mvllm::emu {
namespace {

struct Node {
  enum Kind { Kernel, Copy, Set, Event } kind = Kernel;
  LaunchSpec spec{};  // Kernel
  std::shared_ptr<const KernelCall> call;
  void* dst = nullptr;  // Copy, Set
  const void* src = nullptr;
  size_t bytes = 0;
  int value = 0;
  cudaEvent_t event = nullptr;  // Event
};

}  // namespace
}  // namespace mvllm::emu

struct CUstream_st {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id owner;
  std::vector<mvllm::emu::Node> nodes;
  int device = -1;  // the current device when it was created (-1: the legacy stream, every device's)
};
struct CUgraph_st {
  std::vector<mvllm::emu::Node> nodes;
};
struct CUgraphExec_st {
  std::vector<mvllm::emu::Node> nodes;
};

namespace mvllm::emu {
namespace {

CUstream_st g_legacy;  // stream 0
std::mutex g_streams_m;
std::vector<CUstream_st*> g_capturing;
std::mutex g_attr_m;
std::map<const void*, int> g_max_dynamic_smem;

CUstream_st* resolve(cudaStream_t st) { return st ? st : &g_legacy; }

// An operation a capture does not allow, from this thread: fails every capture it would break, as the real runtime.
cudaError_t unsafe(const char* what) {
  std::lock_guard<std::mutex> lock(g_streams_m);
  bool broke = false;
  for (CUstream_st* s : g_capturing) {
    if (s->mode == cudaStreamCaptureModeRelaxed) continue;
    if (s->mode == cudaStreamCaptureModeThreadLocal && s->owner != std::this_thread::get_id()) continue;
    s->status = cudaStreamCaptureStatusInvalidated;
    broke = true;
  }
  if (!broke) return cudaSuccess;
  return set_error(cudaErrorStreamCaptureUnsupported,
                   std::string(what) + " during a stream capture (the capture is invalidated)");
}

std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

cudaError_t check_config(const LaunchSpec& s) {
  const std::string k = std::string("kernel ") + s.name + ": ";
  const uint64_t threads = uint64_t(s.block.x) * s.block.y * s.block.z;
  if (threads == 0 || threads > 1024 || s.block.x > 1024 || s.block.y > 1024 || s.block.z > 64)
    return set_error(cudaErrorInvalidConfiguration,
                     k + "block " + dims(s.block) + " (sm_90: 1 to 1024 threads, at most (1024, 1024, 64))");
  if (s.grid.x == 0 || s.grid.y == 0 || s.grid.z == 0 || s.grid.x > 0x7fffffffu || s.grid.y > 65535 || s.grid.z > 65535)
    return set_error(cudaErrorInvalidConfiguration,
                     k + "grid " + dims(s.grid) + " (sm_90: each at least 1, at most (2^31 - 1, 65535, 65535))");
  int optin = 48 << 10;
  {
    std::lock_guard<std::mutex> lock(g_attr_m);
    auto it = g_max_dynamic_smem.find(s.func);
    if (it != g_max_dynamic_smem.end()) optin = std::max(optin, it->second);
  }
  if (s.smem > size_t(optin))
    return set_error(cudaErrorInvalidValue,
                     k + std::to_string(s.smem) + " bytes of dynamic shared memory, above the " +
                         std::to_string(optin) +
                         " allowed (above 48 KB needs cudaFuncAttributeMaxDynamicSharedMemorySize)");
  return cudaSuccess;
}

// Runs one launch now: its pointers must be live, its blocks must not fault, its allocations' guards must hold.
cudaError_t execute(const LaunchSpec& s, const KernelCall& call) {
  const std::string k = std::string("kernel ") + s.name + ": ";
  std::string why;
  for (size_t i = 0; i < call.pointers.size(); ++i)
    if (call.pointers[i] && !check_range(call.pointers[i], 1, &why))
      return set_error(cudaErrorIllegalAddress, k + "pointer argument " + std::to_string(i + 1) + " " + why);
  const cudaError_t e = run_grid(s, call, &why);
  if (e != cudaSuccess) return set_error(e, k + why);
  if (!check_guards(call, &why)) return set_error(cudaErrorIllegalAddress, k + why);
  return cudaSuccess;
}

cudaError_t run_node(const Node& n) {
  std::string why;
  switch (n.kind) {
    case Node::Kernel:
      for (size_t i = 0; i < n.call->pointers.size(); ++i)
        if (n.call->pointers[i] && !check_device(n.call->pointers[i], &why))
          return set_error(cudaErrorIllegalAddress, std::string("kernel ") + n.spec.name + ": pointer argument " +
                                                        std::to_string(i + 1) + " " + why);
      return execute(n.spec, *n.call);
    case Node::Copy:
      if (!check_range(n.dst, n.bytes, &why) || !check_range(n.src, n.bytes, &why) || !check_device(n.dst, &why) ||
          !check_device(n.src, &why))
        return set_error(cudaErrorInvalidValue, "a device copy: a side " + why);
      std::memmove(n.dst, n.src, n.bytes);
      return cudaSuccess;
    case Node::Set:
      if (!check_range(n.dst, n.bytes, &why) || !check_device(n.dst, &why))
        return set_error(cudaErrorInvalidValue, "a memset: the destination " + why);
      std::memset(n.dst, n.value, n.bytes);
      return cudaSuccess;
    case Node::Event: {
      // The device's event clock ticks at least once (0.5 us) between two records, as there is always work between.
      static std::mutex m;
      static std::chrono::steady_clock::time_point last;
      std::lock_guard<std::mutex> lock(m);
      last = std::max(std::chrono::steady_clock::now(), last + std::chrono::nanoseconds(500));
      n.event->recorded = true;
      n.event->at = last;
      return cudaSuccess;
    }
  }
  return cudaSuccess;
}

// Queues a node on a stream: recorded when the stream is capturing, else run now.
// A stream runs on the device that was current when it was created, and only while that device is current.
cudaError_t check_stream_device(cudaStream_t st) {
  const CUstream_st* s = resolve(st);
  if (s->device < 0 || s->device == current_device()) return cudaSuccess;
  return set_error(cudaErrorInvalidResourceHandle, "work queued on a stream of device " + std::to_string(s->device) +
                                                       " while device " + std::to_string(current_device()) +
                                                       " is current");
}

cudaError_t enqueue(cudaStream_t st, Node n) {
  if (cudaError_t e = check_stream_device(st)) return e;
  CUstream_st* s = resolve(st);
  {
    std::lock_guard<std::mutex> lock(g_streams_m);
    if (s->status == cudaStreamCaptureStatusActive) {
      s->nodes.push_back(std::move(n));
      return cudaSuccess;
    }
    if (s->status == cudaStreamCaptureStatusInvalidated)
      return set_error(cudaErrorStreamCaptureInvalidated, "work queued on a stream whose capture was invalidated");
  }
  return run_node(n);
}

bool capturing(cudaStream_t st) {
  std::lock_guard<std::mutex> lock(g_streams_m);
  return resolve(st)->status != cudaStreamCaptureStatusNone;
}

}  // namespace

void submit(const LaunchSpec& spec, std::shared_ptr<const KernelCall> call) {
  if (check_config(spec) != cudaSuccess) return;
  Node n;
  n.kind = Node::Kernel;
  n.spec = spec;
  n.call = std::move(call);
  enqueue(spec.stream, std::move(n));
}

cudaError_t func_set_attribute(const void* func, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > (227 << 10))
    return set_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: dynamic shared memory above sm_90's 227 KB");
  std::lock_guard<std::mutex> lock(g_attr_m);
  g_max_dynamic_smem[func] = value;
  return cudaSuccess;
}

cudaError_t func_get_attributes(cudaFuncAttributes* attr, const void* func) {
  std::lock_guard<std::mutex> lock(g_attr_m);
  auto it = g_max_dynamic_smem.find(func);
  attr->maxDynamicSharedSizeBytes = it == g_max_dynamic_smem.end() ? 0 : it->second;
  attr->ptxVersion = attr->binaryVersion = settings().arch;
  attr->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}

}  // namespace mvllm::emu

using namespace mvllm::emu;  // NOLINT: the runtime API is global, as CUDA's

cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = nullptr;
  if (cudaError_t e = unsafe("cudaMalloc")) return e;
  return allocate(p, bytes, false);
}
cudaError_t cudaFree(void* p) {
  if (cudaError_t e = unsafe("cudaFree")) return e;
  return deallocate(p, false);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t st) {
  if (bytes == 0) return cudaSuccess;
  std::string why;
  const bool dst_dev = check_range(dst, bytes, &why), src_dev = check_range(src, bytes, &why);
  if (kind == cudaMemcpyDefault)
    kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                   : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  const bool need_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool need_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if ((need_dst && !check_range(dst, bytes, &why)) || (need_src && !check_range(src, bytes, &why)))
    return set_error(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(bytes) + " bytes: the " +
                                                (need_dst && !dst_dev ? "destination " : "source ") + why);
  if ((need_dst && !check_device(dst, &why)) || (need_src && !check_device(src, &why)))
    return set_error(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(bytes) + " bytes: a side " + why);
  if (cudaError_t e = check_stream_device(st)) return e;
  if (kind == cudaMemcpyDeviceToDevice) {
    Node n;
    n.kind = Node::Copy;
    n.dst = dst;
    n.src = src;
    n.bytes = bytes;
    return enqueue(st, n);
  }
  if (capturing(st)) {
    unsafe("cudaMemcpyAsync between host and device");
    return set_error(cudaErrorStreamCaptureUnsupported, "cudaMemcpyAsync between host and device during a capture");
  }
  std::memcpy(dst, src, bytes);
  if (kind == cudaMemcpyDeviceToHost) digest(dst, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = unsafe("cudaMemcpy")) return e;
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t st) {
  if (bytes == 0) return cudaSuccess;
  std::string why;
  if (!check_range(p, bytes, &why)) return set_error(cudaErrorInvalidValue, "cudaMemset: the destination " + why);
  Node n;
  n.kind = Node::Set;
  n.dst = p;
  n.bytes = bytes;
  n.value = value;
  return enqueue(st, n);
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (cudaError_t e = unsafe("cudaMemset")) return e;
  return cudaMemsetAsync(p, value, bytes, nullptr);
}

cudaError_t cudaStreamCreate(cudaStream_t* st) {
  *st = new CUstream_st;
  (*st)->device = current_device();
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* st, unsigned) { return cudaStreamCreate(st); }
cudaError_t cudaStreamDestroy(cudaStream_t st) {
  if (st && !capturing(st)) delete st;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t st) {
  if (capturing(st)) {
    unsafe("cudaStreamSynchronize");
    return set_error(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize of a capturing stream");
  }
  return unsafe("cudaStreamSynchronize");
}
cudaError_t cudaDeviceSynchronize() { return unsafe("cudaDeviceSynchronize"); }

cudaError_t cudaStreamIsCapturing(cudaStream_t st, cudaStreamCaptureStatus* status) {
  std::lock_guard<std::mutex> lock(g_streams_m);
  *status = resolve(st)->status;
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t st, cudaStreamCaptureMode mode) {
  std::lock_guard<std::mutex> lock(g_streams_m);
  if (!st) return set_error(cudaErrorStreamCaptureUnsupported, "the legacy default stream cannot be captured");
  if (st->status != cudaStreamCaptureStatusNone)
    return set_error(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already capturing");
  st->status = cudaStreamCaptureStatusActive;
  st->mode = mode;
  st->owner = std::this_thread::get_id();
  st->nodes.clear();
  g_capturing.push_back(st);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t* graph) {
  *graph = nullptr;
  std::lock_guard<std::mutex> lock(g_streams_m);
  if (!st || st->status == cudaStreamCaptureStatusNone)
    return set_error(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not capturing");
  if (st->mode == cudaStreamCaptureModeThreadLocal && st->owner != std::this_thread::get_id())
    return set_error(cudaErrorStreamCaptureWrongThread, "cudaStreamEndCapture from a thread that did not begin it");
  const bool invalid = st->status == cudaStreamCaptureStatusInvalidated;
  st->status = cudaStreamCaptureStatusNone;
  g_capturing.erase(std::remove(g_capturing.begin(), g_capturing.end(), st), g_capturing.end());
  if (invalid) {
    st->nodes.clear();
    return set_error(cudaErrorStreamCaptureInvalidated,
                     "cudaStreamEndCapture: something during the capture was not allowed");
  }
  *graph = new CUgraph_st{std::move(st->nodes)};
  st->nodes.clear();
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return set_error(cudaErrorInvalidValue, "cudaGraphInstantiate of a null graph");
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t st) {
  if (!exec) return set_error(cudaErrorInvalidValue, "cudaGraphLaunch of a null graph");
  if (capturing(st)) return set_error(cudaErrorStreamCaptureUnsupported, "cudaGraphLaunch into a capturing stream");
  if (cudaError_t e = check_stream_device(st)) return e;
  // The captured arguments as they were: a buffer freed or moved since the capture is caught by the pointer checks.
  for (const Node& n : exec->nodes)
    if (cudaError_t e = run_node(n)) return e;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) { return *e = new CUevent_st, cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t st) {
  if (!e) return set_error(cudaErrorInvalidResourceHandle, "cudaEventRecord of a null event");
  Node n;
  n.kind = Node::Event;
  n.event = e;
  if (capturing(st)) e->recorded = false;  // recorded when the graph replays
  return enqueue(st, n);
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!e) return set_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize of a null event");
  return unsafe("cudaEventSynchronize");
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!a || !b || !a->recorded || !b->recorded)
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime of an event not recorded");
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}
