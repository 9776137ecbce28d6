#include "cpu_graph.h"

#include <memory>

#include "../core/error.h"
#include "args.h"
#include "storage.h"

namespace mvllm::binding {
namespace {

// One recording per thread: the main thread and each worker (an engine core) record on their own.
thread_local std::unique_ptr<CpuGraph> t_recording;

// Marks the externals cpuGraphEnd returns, so a stray object is a TypeError rather than a wild pointer.
constexpr napi_type_tag kCpuGraphTag = {0x6d76'6c6c'6d63'7067ull, 0x7261'7068'0000'0001ull};

CpuGraph* to_cpu_graph(const Napi::CallbackInfo& info, const char* op) {
  if (info.Length() < 1 || !info[0].IsExternal() || !info[0].As<Napi::External<CpuGraph>>().CheckTypeTag(&kCpuGraphTag))
    fail(ErrorKind::Type, op, ": expected a graph handle from cpuGraphEnd");
  return info[0].As<Napi::External<CpuGraph>>().Data();
}

}  // namespace

void CpuGraph::pin(napi_env env, napi_value object, const Storage* s) {
  if (!pinned_.insert(s).second) return;
  pins_.push_back(Napi::Persistent(Napi::Object(env, object)));
}

void CpuGraph::replay() const {
  if (destroyed_) fail(ErrorKind::Type, "cpuGraphReplay: the graph was destroyed");
  for (const Storage* s : pinned_)
    if (!s->data()) fail(ErrorKind::Type, "cpuGraphReplay: a tensor the graph reads was disposed; capture it again");
  for (const auto& step : steps_) step();
}

void CpuGraph::destroy() {
  destroyed_ = true;
  steps_.clear();
  pins_.clear();
  pinned_.clear();
}

CpuGraph* cpu_graph_recording() { return t_recording.get(); }

void refuse_while_recording(const char* what) {
  if (t_recording)
    fail(ErrorKind::Unsupported, what, ": not allowed while a CPU graph is recorded (only ops on CPU tensors are)");
}

Napi::Value cpu_graph_begin(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    if (t_recording) fail(ErrorKind::Unsupported, "cpuGraphBegin: this thread is already recording a CPU graph");
    t_recording = std::make_unique<CpuGraph>();
  });
}

Napi::Value cpu_graph_end(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (!t_recording) fail(ErrorKind::Unsupported, "cpuGraphEnd: this thread is not recording a CPU graph");
    auto ext =
        Napi::External<CpuGraph>::New(info.Env(), t_recording.release(), [](Napi::Env, CpuGraph* g) { delete g; });
    ext.TypeTag(&kCpuGraphTag);
    return ext;
  });
}

Napi::Value cpu_graph_abort(const Napi::CallbackInfo& info) {
  t_recording.reset();
  return info.Env().Undefined();
}

Napi::Value cpu_graph_replay(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    refuse_while_recording("cpuGraphReplay");
    to_cpu_graph(info, "cpuGraphReplay")->replay();
  });
}

Napi::Value cpu_graph_destroy(const Napi::CallbackInfo& info) {
  return run(info, [&] { to_cpu_graph(info, "cpuGraphDestroy")->destroy(); });
}

}  // namespace mvllm::binding
