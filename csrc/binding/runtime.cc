// The runtime as JS sees it: backends, CPU threads, the device stream (synchronize, timers, the profiler's events and
// NVTX ranges), CUDA graphs, and the benchmarks' limits. Calls that need a device throw Unsupported in a CPU-only
// build (MVLLM_CUDA_ONLY), or do nothing where there is nothing to do without one (MVLLM_IF_CUDA).
#include "runtime.h"

#include <napi.h>

#include <string>

#include "../core/check.h"
#include "../cpu/isa.h"
#include "../cpu/parallel.h"
#include "args.h"
#ifdef MINI_VLLM_WITH_CUDA
#include "../cuda/api.h"
#endif
#ifdef MINI_VLLM_CUDA_EMULATED
#include <vector>
namespace mvllm::emu {
std::vector<double> probe(const std::string& name, const std::vector<double>& args);  // csrc/emu/probe.cc
}
#endif

#ifndef MINI_VLLM_CPU_ARCH
#define MINI_VLLM_CPU_ARCH "unknown"
#endif
#ifndef MINI_VLLM_CUDA_ARCHS
#define MINI_VLLM_CUDA_ARCHS ""
#endif

namespace mvllm::binding {
namespace {

#ifdef MINI_VLLM_WITH_CUDA
// Marks the externals graphEnd returns, so a stray object is a TypeError rather than a wild pointer.
constexpr napi_type_tag kGraphTag = {0x6d76'6c6c'6d67'7261ull, 0x7068'0000'0000'0001ull};

cuda::Graph* to_graph(const Napi::CallbackInfo& info, const char* op) {
  if (info.Length() < 1 || !info[0].IsExternal() || !info[0].As<Napi::External<cuda::Graph>>().CheckTypeTag(&kGraphTag))
    fail(ErrorKind::Type, op, ": expected a graph handle from graphEnd");
  return info[0].As<Napi::External<cuda::Graph>>().Data();
}
#endif

// The device index every stream call takes first.
[[maybe_unused]] int device_arg(const Napi::CallbackInfo& info, const char* op) { return to_device_index(info[0], op); }

}  // namespace

// A runtime function whose one argument is a device index, passed to a CUDA runtime call; without CUDA, `needed`
// ones throw Unsupported and the others (nothing to wait for or drop) do nothing.
#ifdef MINI_VLLM_WITH_CUDA
#define MVLLM_DEVICE_CALL(name, js_name, call, needed)                 \
  Napi::Value name(const Napi::CallbackInfo& info) {                   \
    return run(info, [&] { return call(device_arg(info, js_name)); }); \
  }
#else
#define MVLLM_DEVICE_CALL(name, js_name, call, needed) \
  Napi::Value name(const Napi::CallbackInfo& info) {   \
    return run(info, [] {                              \
      if (needed) no_cuda();                           \
    });                                                \
  }
#endif

MVLLM_DEVICE_CALL(synchronize, "synchronize", cuda::synchronize, false)      // waits for the stream; throws its errors
MVLLM_DEVICE_CALL(timer_start, "timerStart", cuda::timer_start, true)        // CUDA events around what is queued...
MVLLM_DEVICE_CALL(timer_stop, "timerStop", cuda::timer_stop, true)           // ...in between: -> ms
MVLLM_DEVICE_CALL(profile_event, "profileEvent", cuda::profile_event, true)  // the profiler's events: -> event id
MVLLM_DEVICE_CALL(profile_reset, "profileReset", cuda::profile_reset, true)  // reuse the event pool from id 0
MVLLM_DEVICE_CALL(graph_begin, "graphBegin", cuda::graph_begin, true)   // record this thread's launches (graphs, below)
MVLLM_DEVICE_CALL(graph_abort, "graphAbort", cuda::graph_abort, false)  // drop a capture that failed
#undef MVLLM_DEVICE_CALL

// backends(queryCuda = true): backends(false) reports without touching the CUDA runtime (MINI_VLLM_DEVICE=cpu).
Napi::Value backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool query_cuda = !(info.Length() > 0 && info[0].IsBoolean() && !info[0].As<Napi::Boolean>().Value());
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("threads", cpu::num_threads());
  // isa: the level of the CPU kernels in use; isas: the levels this build holds that this machine runs, best first
  // (cpu/isa.h). simd is isa's older name.
  cpu.Set("isa", cpu::kernels().isa);
  cpu.Set("simd", cpu::kernels().isa);
  Napi::Array isas = Napi::Array::New(env);
  for (const cpu::Kernels* k : cpu::runnable_levels()) isas.Set(isas.Length(), k->isa);
  cpu.Set("isas", isas);
  Napi::Array built = Napi::Array::New(env);
  for (const char* b : cpu::built_levels()) built.Set(built.Length(), b);
  cpu.Set("builtIsas", built);
  cpu.Set("arch", MINI_VLLM_CPU_ARCH);
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", kCudaCompiled);
#ifdef MINI_VLLM_CUDA_EMULATED
  cuda.Set("emulated", true);  // csrc/emu: the CUDA kernels run on the CPU
#else
  cuda.Set("emulated", false);
#endif
  cuda.Set("archs", MINI_VLLM_CUDA_ARCHS);
  cuda.Set("available", false);
  Napi::Array devices = Napi::Array::New(env);
  if (!kCudaCompiled) {
    cuda.Set("error", "this build of mini-vllm has no CUDA backend (built without nvcc)");
  } else if (!query_cuda) {
    cuda.Set("error", "disabled by MINI_VLLM_DEVICE=cpu");
  } else {
    MVLLM_IF_CUDA({
      const cuda::Report& r = cuda::query();
      cuda.Set("available", r.available);
      for (size_t i = 0; i < r.devices.size(); ++i) {
        Napi::Object d = Napi::Object::New(env);
        d.Set("name", r.devices[i].name);
        d.Set("computeCapability", std::to_string(r.devices[i].major) + "." + std::to_string(r.devices[i].minor));
        d.Set("totalMemory", double(r.devices[i].total_memory));
        d.Set("multiprocessors", r.devices[i].multiprocessors);
        d.Set("clockMhz", r.devices[i].clock_khz / 1000.0);
        d.Set("memoryClockMhz", r.devices[i].memory_clock_khz / 1000.0);
        d.Set("memoryBusWidth", r.devices[i].memory_bus_bits);
        devices.Set(uint32_t(i), d);
      }
      if (!r.error.empty()) cuda.Set("error", r.error);
      cuda.Set("runtimeVersion", r.runtime_version);
      cuda.Set("driverVersion", r.driver_version);
    });
  }
  cuda.Set("devices", devices);
  Napi::Object out = Napi::Object::New(env);
  out.Set("cpu", cpu);
  out.Set("cuda", cuda);
  return out;
}

Napi::Value set_error_class(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction())
    throw Napi::TypeError::New(info.Env(), "setErrorClass: expected a constructor");
  addon_data(info.Env()).error_ctor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value num_threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cpu::num_threads()); }

Napi::Value set_num_threads(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    const double n = to_number(info[0], "setNumThreads", "n");
    if (!(n >= 0 && n <= 1024) || n != double(int(n)))
      fail(ErrorKind::Range, "setNumThreads: n must be an integer in [0, 1024] (0 = all cores), got ", n);
    if (info.Length() > 1 && info[1].ToBoolean().Value())
      cpu::set_own_threads(int(n));
    else
      cpu::set_num_threads(int(n));
  });
}

// setCpuIsa(isa): the CPU kernels' level from now on, for every thread (tests and benchmarks compare the levels).
Napi::Value set_cpu_isa(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    expect_args(info, 1, "setCpuIsa");
    if (!info[0].IsString()) fail(ErrorKind::Type, "setCpuIsa: isa must be a string, got ", js_type(info[0]));
    cpu::set_isa(info[0].As<Napi::String>().Utf8Value(), "setCpuIsa: isa");
  });
}

// profileElapsed(deviceIndex, a, b) -> milliseconds from the profiler's event a to event b (waits for b).
Napi::Value profile_elapsed(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    expect_args(info, 3, "profileElapsed");
    [[maybe_unused]] const int device = device_arg(info, "profileElapsed");
    const double a = to_number(info[1], "profileElapsed", "a"), b = to_number(info[2], "profileElapsed", "b");
    if (a != double(int(a)) || b != double(int(b)))
      fail(ErrorKind::Type, "profileElapsed: event ids must be integers, got ", a, " and ", b);
    double ms = 0;
    MVLLM_CUDA_ONLY(ms = cuda::profile_elapsed(device, int(a), int(b)));
    return ms;
  });
}

// rangePush(name) / rangePop(): NVTX ranges for Nsight Systems; nothing without CUDA.
Napi::Value range_push(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    if (info.Length() < 1 || !info[0].IsString()) fail(ErrorKind::Type, "rangePush: name must be a string");
    MVLLM_IF_CUDA(cuda::range_push(info[0].As<Napi::String>().Utf8Value().c_str()));
  });
}

Napi::Value range_pop(const Napi::CallbackInfo& info) {
  MVLLM_IF_CUDA(cuda::range_pop());
  return info.Env().Undefined();
}

// CUDA graphs. graphBegin(deviceIndex) starts recording the device stream's launches; graphEnd(deviceIndex) returns
// the instantiated graph as an opaque handle (freed by graphDestroy or when collected); graphAbort(deviceIndex) drops
// a capture that failed; graphReplay(handle) launches it, or returns false when it must be captured again.

Napi::Value graph_end(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Value handle;
    MVLLM_CUDA_ONLY({
      cuda::Graph* g = cuda::graph_end(device_arg(info, "graphEnd"));
      auto ext =
          Napi::External<cuda::Graph>::New(info.Env(), g, [](Napi::Env, cuda::Graph* p) { cuda::graph_delete(p); });
      ext.TypeTag(&kGraphTag);
      handle = ext;
    });
    return handle;
  });
}

Napi::Value graph_replay(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    bool launched = false;
    MVLLM_CUDA_ONLY(launched = cuda::graph_replay(to_graph(info, "graphReplay")));
    return launched;
  });
}

Napi::Value graph_destroy(const Napi::CallbackInfo& info) {
  return run(info, [&] { MVLLM_IF_CUDA(cuda::graph_destroy(to_graph(info, "graphDestroy"))); });
}

// streamRead(x: float32 CPU contiguous) -> sum of all elements; the benchmarks' read-bandwidth reference.
Napi::Value stream_read(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    expect_args(info, 1, "streamRead");
    const TensorView t = to_tensor(info[0], "streamRead", "x");
    if (t.device != Device::CPU) fail(ErrorKind::Type, "streamRead: x must be a CPU tensor");
    Check("streamRead").dtype(t, "x", DType::Float32);
    Check("streamRead").contiguous(t, "x");
    return cpu::kernels().stream_read(t);
  });
}

// fmaPeak(seconds) -> GFLOP/s of fp32 FMAs on every CPU thread: the benchmarks' compute limit.
Napi::Value fma_peak(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    const double s = to_number(info[0], "fmaPeak", "seconds");
    if (!(s > 0 && s <= 60)) fail(ErrorKind::Range, "fmaPeak: seconds must be in (0, 60], got ", s);
    return cpu::kernels().fma_peak(s);
  });
}

// emuProbe(name, args: number[]) -> number[]: one of the emulated device's probes (csrc/emu/probe.cc), for its
// own tests. Other builds have no emulated device: Unsupported.
Napi::Value emu_probe(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_CUDA_EMULATED
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
      fail(ErrorKind::Type, "emuProbe: expected (name: string, args: number[])");
    const auto arr = info[1].As<Napi::Array>();
    std::vector<double> args(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) args[i] = to_number(arr.Get(i), "emuProbe", "args");
    const std::vector<double> out = emu::probe(info[0].As<Napi::String>().Utf8Value(), args);
    Napi::Array r = Napi::Array::New(info.Env(), out.size());
    for (uint32_t i = 0; i < out.size(); ++i) r.Set(i, out[i]);
    return r;
#else
    fail(ErrorKind::Unsupported, "emuProbe: this build has no emulated CUDA device (npm run build:emu)");
#endif
  });
}

}  // namespace mvllm::binding
