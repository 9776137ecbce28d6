// The CUDA runtime as the binding sees it (devices, memory, streams, events, graphs, copies); no CUDA types here, so
// plain C++ can include it. The ops' entry points are declared once for both backends in core/op_checks.h.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "../core/op_checks.h"
#include "../core/tensor.h"

namespace mvllm::cuda {

struct DeviceInfo {
  std::string name;
  int major = 0, minor = 0;
  size_t total_memory = 0;
  int multiprocessors = 0;
  int clock_khz = 0, memory_clock_khz = 0, memory_bus_bits = 0;  // 0: the runtime did not say
};

struct Report {
  bool available = false;
  std::string error;  // the runtime's text when not available
  std::vector<DeviceInfo> devices;
  int runtime_version = 0, driver_version = 0;
};

// Asks the runtime once and caches the answer; never throws (no driver is an answer, not an error).
const Report& query();
// Throws Unsupported unless device `index` exists.
void require_device(int index);

void* alloc(int device, size_t bytes);       // throws OutOfMemory or Cuda
void release(int device, void* p) noexcept;  // errors ignored: runs from finalisers
void memcpy_htod(int device, void* dst, const void* src, size_t bytes);
void memcpy_dtoh(int device, void* dst, const void* src, size_t bytes);  // waits for the stream
// The driver's count of the device's free and total memory (cudaMemGetInfo).
void mem_info(int device, size_t* free_bytes, size_t* total_bytes);
// Waits for the device's stream; throws a pending CUDA error or a failed device-side check.
void synchronize(int device);
// Times what is queued between the two calls with CUDA events, in milliseconds.
void timer_start(int device);
double timer_stop(int device);
// The profiler's CUDA events: record one on the device's stream (its id), the milliseconds between two recorded ones
// (waits for the later), and reuse of the pool from the start.
int profile_event(int device);
double profile_elapsed(int device, int a, int b);
void profile_reset(int device);
// NVTX ranges (header-only NVTX 3: free unless a tool such as Nsight Systems is attached).
void range_push(const char* name);
void range_pop();

// CUDA graphs (graph.cu): begin recording this thread's launches on the device's stream; end and instantiate (throws
// if something during the capture was not allowed); drop a failed capture so the stream works again; replay (false,
// launching nothing, when the attention scratch moved since the capture: capture again); free. A Graph is opaque.
struct Graph;
void graph_begin(int device);
Graph* graph_end(int device);
void graph_abort(int device) noexcept;
bool graph_replay(Graph* g);
void graph_destroy(Graph* g) noexcept;  // frees the executable graph; the handle stays valid (replay then throws)
void graph_delete(Graph* g) noexcept;   // graph_destroy, then frees the handle

// Same CUDA device, same shape; converts float dtypes; any strides.
void copy(const TensorView& dst, const TensorView& src);
void fill(const TensorView& t, double value);
// A linear layer over inFeatures 0: out = bias in every row (or 0). linear.cu; quant.cu's quantLinear shares it.
void empty_sum(const TensorView& out, const MaybeTensor& bias);

}  // namespace mvllm::cuda
