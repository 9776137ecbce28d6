// CPU graphs: the CPU ops one thread calls, recorded once with their arguments read and checked, and replayed by one
// call, as a CUDA graph replays its launches. A decode step of a small model calls ~120 ops of a few microseconds
// each; reading their arguments from JS costs about as much again, and a replay skips it.
//
// While a thread records, an op on CPU tensors is checked and recorded, not run; what cannot be recorded in order
// fails the op with an error and the capture is dropped: an op of host arrays (sampleRows), an op on a CUDA tensor,
// allocating, copying and filling. A graph keeps the storages its ops read alive (a reference to each), and a replay
// checks that none was freed since, so a disposed buffer is an error, never a read of freed memory.
#pragma once

#include <napi.h>

#include <functional>
#include <unordered_set>
#include <vector>

namespace mvllm::binding {

class Storage;

class CpuGraph {
 public:
  void add(std::function<void()> step) { steps_.push_back(std::move(step)); }
  // Keeps `object` (the JS object of storage `s`) alive as long as the graph.
  void pin(napi_env env, napi_value object, const Storage* s);
  // Runs the recorded ops in order; throws if the graph was destroyed or a storage it reads was freed.
  void replay() const;
  // Drops the ops and the references (graphDestroy); replaying afterwards throws.
  void destroy();

 private:
  std::vector<std::function<void()>> steps_;
  std::vector<Napi::ObjectReference> pins_;    // one per storage in pinned_
  std::unordered_set<const Storage*> pinned_;  // the storages the ops read, each once
  bool destroyed_ = false;
};

// The graph this thread is recording, or null.
CpuGraph* cpu_graph_recording();
// Fails (naming `what`) while this thread records a CPU graph.
void refuse_while_recording(const char* what);

Napi::Value cpu_graph_begin(const Napi::CallbackInfo& info);    // cpuGraphBegin()
Napi::Value cpu_graph_end(const Napi::CallbackInfo& info);      // cpuGraphEnd() -> handle
Napi::Value cpu_graph_abort(const Napi::CallbackInfo& info);    // cpuGraphAbort()
Napi::Value cpu_graph_replay(const Napi::CallbackInfo& info);   // cpuGraphReplay(handle)
Napi::Value cpu_graph_destroy(const Napi::CallbackInfo& info);  // cpuGraphDestroy(handle)

}  // namespace mvllm::binding
