// CUDA graphs: record what this thread queues on a device's stream, then replay it as one launch.
//
// A graph bakes in every kernel's arguments (pointers, shapes, grid sizes), so the caller keeps its buffers where they
// were at capture and changes only their contents between replays. The one buffer the runtime may move is the
// attention scratch: a graph remembers the scratch generation it saw, and a replay after a regrowth refuses to launch
// (the caller captures again) rather than read freed memory.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {

struct Graph {
  int device = 0;
  cudaGraphExec_t exec = nullptr;
  uint64_t scratch_generation = 0;
};

void graph_begin(int device) {
  cudaStream_t st = stream(device);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(st, &status), "cudaStreamIsCapturing");
  if (status != cudaStreamCaptureStatusNone)
    fail(ErrorKind::Range, "cudaGraph: cuda:", device, " is already capturing (captures do not nest)");
  // NOTE: thread-local mode: an unsafe call on this thread (cudaMalloc, a synchronize) fails the capture with an
  // error instead of racing it; other threads are not affected.
  check(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
}

Graph* graph_end(int device) {
  cudaStream_t st = stream(device);
  cudaGraph_t graph = nullptr;
  check(cudaStreamEndCapture(st, &graph), "cudaStreamEndCapture (an operation during the capture was not allowed)");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check(err, "cudaGraphInstantiate");
  Graph* g = new Graph;
  g->device = device;
  g->exec = exec;
  g->scratch_generation = scratch_generation(device);
  return g;
}

void graph_abort(int device) noexcept {
  if (cudaSetDevice(device) != cudaSuccess) return;
  cudaStream_t st = nullptr;
  try {
    st = stream(device);
  } catch (...) {
    return;
  }
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(st, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t graph = nullptr;
    if (cudaStreamEndCapture(st, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  }
  cudaGetLastError();  // an invalidated capture leaves a non-sticky error behind
}

bool graph_replay(Graph* g) {
  if (!g || !g->exec) fail(ErrorKind::Range, "cudaGraph: the graph was disposed");
  cudaStream_t st = stream(g->device);
  if (g->scratch_generation != scratch_generation(g->device)) return false;
  check(cudaGraphLaunch(g->exec, st), "cudaGraphLaunch");
  return true;
}

void graph_destroy(Graph* g) noexcept {
  if (!g || !g->exec) return;
  if (cudaSetDevice(g->device) == cudaSuccess) cudaGraphExecDestroy(g->exec);
  cudaGetLastError();
  g->exec = nullptr;
}

void graph_delete(Graph* g) noexcept {
  graph_destroy(g);
  delete g;
}

}  // namespace mvllm::cuda
