// The addon's runtime functions (everything but the ops): each reads its JS arguments and calls the CPU or CUDA
// runtime. addon.cc registers them under these names; lib/native.ts types them.
#pragma once

#include <napi.h>

namespace mvllm::binding {

// ---- memory.cc ----
Napi::Value copy_from_host(const Napi::CallbackInfo& info);  // copyFromHost(dst, src: Float32Array | Int32Array)
Napi::Value copy_to_host(const Napi::CallbackInfo& info);    // copyToHost(src, dst: Float32Array | Int32Array)
Napi::Value copy(const Napi::CallbackInfo& info);            // copy(dst, src)
Napi::Value fill(const Napi::CallbackInfo& info);            // fill(tensor, value)
Napi::Value memory_stats(const Napi::CallbackInfo& info);    // memoryStats() -> {cpu, cuda}
Napi::Value reset_peak_memory(const Napi::CallbackInfo& info);
Napi::Value device_memory(const Napi::CallbackInfo& info);  // deviceMemory(deviceIndex) -> {free, total}

// ---- runtime.cc ----
Napi::Value backends(const Napi::CallbackInfo& info);         // backends(queryCuda = true)
Napi::Value set_error_class(const Napi::CallbackInfo& info);  // setErrorClass(MiniVllmError)
Napi::Value num_threads(const Napi::CallbackInfo& info);
Napi::Value set_num_threads(const Napi::CallbackInfo& info);
Napi::Value set_cpu_isa(const Napi::CallbackInfo& info);      // setCpuIsa(isa)
Napi::Value synchronize(const Napi::CallbackInfo& info);      // synchronize(deviceIndex)
Napi::Value timer_start(const Napi::CallbackInfo& info);      // timerStart(deviceIndex)
Napi::Value timer_stop(const Napi::CallbackInfo& info);       // timerStop(deviceIndex) -> ms
Napi::Value profile_event(const Napi::CallbackInfo& info);    // profileEvent(deviceIndex) -> event id
Napi::Value profile_elapsed(const Napi::CallbackInfo& info);  // profileElapsed(deviceIndex, a, b) -> ms
Napi::Value profile_reset(const Napi::CallbackInfo& info);    // profileReset(deviceIndex)
Napi::Value range_push(const Napi::CallbackInfo& info);       // rangePush(name)
Napi::Value range_pop(const Napi::CallbackInfo& info);        // rangePop()
Napi::Value graph_begin(const Napi::CallbackInfo& info);      // graphBegin(deviceIndex)
Napi::Value graph_end(const Napi::CallbackInfo& info);        // graphEnd(deviceIndex) -> handle
Napi::Value graph_abort(const Napi::CallbackInfo& info);      // graphAbort(deviceIndex)
Napi::Value graph_replay(const Napi::CallbackInfo& info);     // graphReplay(handle) -> launched
Napi::Value graph_destroy(const Napi::CallbackInfo& info);    // graphDestroy(handle)
Napi::Value stream_read(const Napi::CallbackInfo& info);      // streamRead(x) -> sum
Napi::Value fma_peak(const Napi::CallbackInfo& info);         // fmaPeak(seconds) -> GFLOP/s
Napi::Value emu_probe(const Napi::CallbackInfo& info);        // emuProbe(name, args) -> numbers (emulated build)

// ---- ops.cc ----
// One function per row of MVLLM_FOR_EACH_OP (core/op_checks.h).
Napi::Object make_ops(Napi::Env env);

}  // namespace mvllm::binding
