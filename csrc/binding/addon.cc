// Module registration: the Storage class, the runtime functions by their JS names, and the ops (binding/ops.cc) under
// `ops`. One Addon per environment (the main thread and each worker) holds that environment's handles.
#include <napi.h>

#include <mutex>

#include "../cpu/isa.h"
#include "args.h"
#include "cpu_graph.h"
#include "runtime.h"
#include "storage.h"

namespace mvllm::binding {
namespace {

struct RuntimeFunction {
  const char* name;
  Napi::Value (*fn)(const Napi::CallbackInfo&);
};

// lib/native.ts types each of these; the registry test checks that nothing else is exported.
constexpr RuntimeFunction kRuntime[] = {
    {"backends", backends},
    {"setErrorClass", set_error_class},
    {"numThreads", num_threads},
    {"setNumThreads", set_num_threads},
    {"setCpuIsa", set_cpu_isa},
    {"memoryStats", memory_stats},
    {"resetPeakMemory", reset_peak_memory},
    {"deviceMemory", device_memory},
    {"copyFromHost", copy_from_host},
    {"copyToHost", copy_to_host},
    {"copy", copy},
    {"fill", fill},
    {"synchronize", synchronize},
    {"timerStart", timer_start},
    {"timerStop", timer_stop},
    {"profileEvent", profile_event},
    {"profileElapsed", profile_elapsed},
    {"profileReset", profile_reset},
    {"rangePush", range_push},
    {"rangePop", range_pop},
    {"graphBegin", graph_begin},
    {"graphEnd", graph_end},
    {"graphAbort", graph_abort},
    {"graphReplay", graph_replay},
    {"graphDestroy", graph_destroy},
    {"cpuGraphBegin", cpu_graph_begin},
    {"cpuGraphEnd", cpu_graph_end},
    {"cpuGraphAbort", cpu_graph_abort},
    {"cpuGraphReplay", cpu_graph_replay},
    {"cpuGraphDestroy", cpu_graph_destroy},
    {"streamRead", stream_read},
    {"fmaPeak", fma_peak},
    {"emuProbe", emu_probe},
};

// The CPU kernels' level, once per process (MINI_VLLM_CPU_ISA or the best runnable); a bad MINI_VLLM_CPU_ISA fails
// the load with the RangeError that lists the runnable levels.
void init_cpu_isa(Napi::Env env) {
  static std::once_flag once;
  try {
    std::call_once(once, [] { cpu::init_isa(); });
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(env, e.what());  // setErrorClass has not run yet: a plain RangeError
  }
}

class Addon : public Napi::Addon<Addon> {
 public:
  // Napi::Addon keeps this object as the environment's instance data; addon_data() reads `data` through it.
  AddonData data;

  Addon(Napi::Env env, Napi::Object exports) {
    init_cpu_isa(env);
    data.storage_ctor = Napi::Persistent(Storage::Define(env));
    data.init_keys(env);
    exports.Set("Storage", data.storage_ctor.Value());
    for (const RuntimeFunction& f : kRuntime) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
    exports.Set("ops", make_ops(env));
  }
};

}  // namespace

AddonData& addon_data(Napi::Env env) { return env.GetInstanceData<Addon>()->data; }

}  // namespace mvllm::binding

// The macro pastes the name into identifiers, so it needs an unqualified one.
using MiniVllmAddon = mvllm::binding::Addon;
NODE_API_ADDON(MiniVllmAddon)
