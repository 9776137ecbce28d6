// Module registration and the op entry points: unpack, check (core/op_checks.h), dispatch by device.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "../core/op_checks.h"
#include "../cpu/kernels.h"
#include "../cpu/parallel.h"
#include "../cpu/vec.h"
#include "args.h"
#include "storage.h"
#ifdef MINI_VLLM_WITH_CUDA
#include "../cuda/api.h"
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
constexpr bool kCudaCompiled = true;
#define MVLLM_ON_DEVICE(t, cpu_call, cuda_call) \
  do {                                          \
    if ((t).device == Device::CPU) {            \
      cpu_call;                                 \
    } else {                                    \
      cuda_call;                                \
    }                                           \
  } while (0)
#else
constexpr bool kCudaCompiled = false;
#define MVLLM_ON_DEVICE(t, cpu_call, cuda_call) \
  do {                                          \
    if ((t).device == Device::CPU) {            \
      cpu_call;                                 \
    } else {                                    \
      no_cuda();                                \
    }                                           \
  } while (0)
#endif

// A CUDA device index argument; the runtime checks that the device exists.
[[maybe_unused]] int to_device_index(const Napi::Value& v, const char* op) {
  double d = to_number(v, op, "deviceIndex");
  if (!(d >= 0 && d < 64) || d != double(int(d)))
    fail(ErrorKind::Range, op, ": deviceIndex must be an integer in [0, 64), got ", d);
  return int(d);
}

[[maybe_unused]] [[noreturn]] void no_cuda() {
  fail(ErrorKind::Unsupported, "this build of mini-vllm has no CUDA backend (built without nvcc)");
}

// A dense CPU view over a host typed array, shaped like `like`.
TensorView host_view(void* data, DType dtype, const TensorView& like) {
  TensorView h;
  h.data = data;
  h.dtype = dtype;
  h.ndim = like.ndim;
  int64_t s = 1;
  for (int i = like.ndim - 1; i >= 0; --i) {
    h.shape[i] = like.shape[i];
    h.strides[i] = s;
    s *= like.shape[i];
  }
  return h;
}

// A host typed array matching tensor t: Float32Array for float dtypes, Int32Array for int32.
void* host_array(const Napi::Value& v, const TensorView& t, const char* op) {
  const bool want_int = t.dtype == DType::Int32;
  if (!v.IsTypedArray()) fail(ErrorKind::Type, op, ": expected a ", want_int ? "Int32Array" : "Float32Array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  napi_typedarray_type type = want_int ? napi_int32_array : napi_float32_array;
  if (ta.TypedArrayType() != type)
    fail(ErrorKind::Type, op, ": a ", dtype_name(t.dtype), " tensor needs a ", want_int ? "Int32Array" : "Float32Array");
  if (int64_t(ta.ElementLength()) != t.numel())
    fail(ErrorKind::Range, op, ": array has ", ta.ElementLength(), " elements, tensor ", t.shape_str(), " has ",
         t.numel());
  return static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
}

void check_same_shape(const TensorView& a, const TensorView& b, const char* op) {
  bool same = a.ndim == b.ndim;
  for (int i = 0; same && i < a.ndim; ++i) same = a.shape[i] == b.shape[i];
  if (!same) fail(ErrorKind::Range, op, ": dst shape ", a.shape_str(), " does not match src shape ", b.shape_str());
  if ((a.dtype == DType::Int32) != (b.dtype == DType::Int32))
    fail(ErrorKind::Type, op, ": cannot copy between ", dtype_name(b.dtype), " and ", dtype_name(a.dtype));
}

#ifdef MINI_VLLM_WITH_CUDA
// Host <-> device for a contiguous CUDA tensor, converting on the host when the dtypes differ.
void upload(const TensorView& dst, const TensorView& host) {
  if (!dst.is_contiguous())
    fail(ErrorKind::Range, "copy: a CUDA destination filled from the host must be contiguous");
  const size_t bytes = size_t(dst.numel()) * dst.itemsize();
  if (host.dtype == dst.dtype && host.is_contiguous()) return cuda::memcpy_htod(dst.device_index, dst.data, host.data, bytes);
  std::vector<char> staged(bytes);
  TensorView tmp = host_view(staged.data(), dst.dtype, dst);
  cpu::copy(tmp, host);
  cuda::memcpy_htod(dst.device_index, dst.data, staged.data(), bytes);
}

void download(const TensorView& host, const TensorView& src) {
  if (!src.is_contiguous())
    fail(ErrorKind::Range, "copy: a CUDA source read to the host must be contiguous");
  const size_t bytes = size_t(src.numel()) * src.itemsize();
  if (host.dtype == src.dtype && host.is_contiguous()) return cuda::memcpy_dtoh(src.device_index, host.data, src.data, bytes);
  std::vector<char> staged(bytes);
  cuda::memcpy_dtoh(src.device_index, staged.data(), src.data, bytes);
  cpu::copy(host, host_view(staged.data(), src.dtype, src));
}
#endif

void copy_any(const TensorView& dst, const TensorView& src) {
  check_same_shape(dst, src, "copy");
  if (dst.numel() == 0) return;
  if (dst.device == Device::CPU && src.device == Device::CPU) return cpu::copy(dst, src);
#ifdef MINI_VLLM_WITH_CUDA
  if (dst.device == Device::CUDA && src.device == Device::CUDA) {
    if (dst.device_index != src.device_index) fail(ErrorKind::Range, "copy: between two CUDA devices is not supported");
    return cuda::copy(dst, src);
  }
  if (dst.device == Device::CUDA) return upload(dst, src);
  return download(dst, src);
#else
  no_cuda();
#endif
}

#ifdef MINI_VLLM_WITH_CUDA
// Marks the externals graphEnd returns, so a stray object is a TypeError rather than a wild pointer.
constexpr napi_type_tag kGraphTag = {0x6d76'6c6c'6d67'7261ull, 0x7068'0000'0000'0001ull};

cuda::Graph* to_graph(const Napi::CallbackInfo& info, const char* op) {
  if (info.Length() < 1 || !info[0].IsExternal() || !info[0].As<Napi::External<cuda::Graph>>().CheckTypeTag(&kGraphTag))
    fail(ErrorKind::Type, op, ": expected a graph handle from graphEnd");
  return info[0].As<Napi::External<cuda::Graph>>().Data();
}
#endif

class Addon : public Napi::Addon<Addon> {
 public:
  // Napi::Addon keeps this object as the environment's instance data; addon_data() reads `data` through it.
  AddonData data;

  Addon(Napi::Env env, Napi::Object exports) {
    data.storage_ctor = Napi::Persistent(Storage::Define(env));
    DefineAddon(exports, {
        InstanceValue("Storage", data.storage_ctor.Value()),
        InstanceMethod<&Addon::Backends>("backends"),
        InstanceMethod<&Addon::SetErrorClass>("setErrorClass"),
        InstanceMethod<&Addon::NumThreads>("numThreads"),
        InstanceMethod<&Addon::MemoryStats>("memoryStats"),
        InstanceMethod<&Addon::ResetPeakMemory>("resetPeakMemory"),
        InstanceMethod<&Addon::DeviceMemory>("deviceMemory"),
        InstanceMethod<&Addon::SetNumThreads>("setNumThreads"),
        InstanceMethod<&Addon::CopyFromHost>("copyFromHost"),
        InstanceMethod<&Addon::CopyToHost>("copyToHost"),
        InstanceMethod<&Addon::Copy>("copy"),
        InstanceMethod<&Addon::Fill>("fill"),
        InstanceMethod<&Addon::Synchronize>("synchronize"),
        InstanceMethod<&Addon::TimerStart>("timerStart"),
        InstanceMethod<&Addon::TimerStop>("timerStop"),
        InstanceMethod<&Addon::ProfileEvent>("profileEvent"),
        InstanceMethod<&Addon::ProfileElapsed>("profileElapsed"),
        InstanceMethod<&Addon::ProfileReset>("profileReset"),
        InstanceMethod<&Addon::RangePush>("rangePush"),
        InstanceMethod<&Addon::RangePop>("rangePop"),
        InstanceMethod<&Addon::GraphBegin>("graphBegin"),
        InstanceMethod<&Addon::GraphEnd>("graphEnd"),
        InstanceMethod<&Addon::GraphAbort>("graphAbort"),
        InstanceMethod<&Addon::GraphReplay>("graphReplay"),
        InstanceMethod<&Addon::GraphDestroy>("graphDestroy"),
        InstanceMethod<&Addon::StreamRead>("streamRead"),
        InstanceMethod<&Addon::RmsNorm>("rmsNorm"),
        InstanceMethod<&Addon::FusedAddRmsNorm>("fusedAddRmsNorm"),
        InstanceMethod<&Addon::RotaryEmbedding>("rotaryEmbedding"),
        InstanceMethod<&Addon::SiluAndMul>("siluAndMul"),
        InstanceMethod<&Addon::ReshapeAndCache>("reshapeAndCache"),
        InstanceMethod<&Addon::PagedAttention>("pagedAttention"),
        InstanceMethod<&Addon::Linear>("linear"),
        InstanceMethod<&Addon::Embedding>("embedding"),
        InstanceMethod<&Addon::GatherRows>("gatherRows"),
        InstanceMethod<&Addon::Add>("add"),
        InstanceMethod<&Addon::FmaPeak>("fmaPeak"),
        InstanceMethod<&Addon::SampleRows>("sampleRows"),
        InstanceMethod<&Addon::FillUniform>("fillUniform"),
    });
  }

 private:
  // backends(queryCuda = true): backends(false) reports without touching the CUDA runtime (MINI_VLLM_DEVICE=cpu).
  Napi::Value Backends(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const bool query_cuda = !(info.Length() > 0 && info[0].IsBoolean() && !info[0].As<Napi::Boolean>().Value());
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("threads", cpu::num_threads());
    cpu.Set("simd", cpu::kSimdName);
    cpu.Set("arch", MINI_VLLM_CPU_ARCH);
    Napi::Object cuda = Napi::Object::New(env);
    cuda.Set("compiled", kCudaCompiled);
    cuda.Set("archs", MINI_VLLM_CUDA_ARCHS);
    cuda.Set("available", false);
    Napi::Array devices = Napi::Array::New(env);
    if (!kCudaCompiled) {
      cuda.Set("error", "this build of mini-vllm has no CUDA backend (built without nvcc)");
    } else if (!query_cuda) {
      cuda.Set("error", "disabled by MINI_VLLM_DEVICE=cpu");
    } else {
#ifdef MINI_VLLM_WITH_CUDA
      const cuda::Report& r = cuda::query();
      cuda.Set("available", r.available);
      for (size_t i = 0; i < r.devices.size(); ++i) {
        Napi::Object d = Napi::Object::New(env);
        d.Set("name", r.devices[i].name);
        d.Set("computeCapability", std::to_string(r.devices[i].major) + "." + std::to_string(r.devices[i].minor));
        d.Set("totalMemory", double(r.devices[i].total_memory));
        devices.Set(uint32_t(i), d);
      }
      if (!r.error.empty()) cuda.Set("error", r.error);
      cuda.Set("runtimeVersion", r.runtime_version);
      cuda.Set("driverVersion", r.driver_version);
#endif
    }
    cuda.Set("devices", devices);
    Napi::Object out = Napi::Object::New(env);
    out.Set("cpu", cpu);
    out.Set("cuda", cuda);
    return out;
  }

  Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
    if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass: expected a constructor");
    data.error_ctor = Napi::Persistent(info[0].As<Napi::Function>());
    return info.Env().Undefined();
  }

  // memoryStats() -> {cpu: {allocations, bytes, peakBytes}, cuda: {...}}: what Storage objects hold right now,
  // and the most they held since resetPeakMemory.
  Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    for (Device d : {Device::CPU, Device::CUDA}) {
      MemoryCounters c = memory_counters(d);
      Napi::Object o = Napi::Object::New(env);
      o.Set("allocations", double(c.allocations));
      o.Set("bytes", double(c.bytes));
      o.Set("peakBytes", double(c.peak_bytes));
      out.Set(device_name(d), o);
    }
    return out;
  }

  // resetPeakMemory() -> undefined: each device's peak restarts at what is held now.
  Napi::Value ResetPeakMemory(const Napi::CallbackInfo& info) {
    for (Device d : {Device::CPU, Device::CUDA}) reset_peak(d);
    return info.Env().Undefined();
  }

  // deviceMemory(deviceIndex) -> {free, total}: the CUDA device's memory as the driver counts it (every process).
  Napi::Value DeviceMemory(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const int index = to_device_index(info[0], "deviceMemory");
#ifdef MINI_VLLM_WITH_CUDA
      cuda::require_device(index);
      size_t free_bytes = 0, total_bytes = 0;
      cuda::mem_info(index, &free_bytes, &total_bytes);
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("free", double(free_bytes));
      o.Set("total", double(total_bytes));
      return o;
#else
      fail(ErrorKind::Unsupported, "deviceMemory: this build has no CUDA backend (cuda:", index, ")");
#endif
    });
  }

  Napi::Value NumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cpu::num_threads()); }

  Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      double n = to_number(info[0], "setNumThreads", "n");
      if (!(n >= 0 && n <= 1024) || n != double(int(n)))
        fail(ErrorKind::Range, "setNumThreads: n must be an integer in [0, 1024] (0 = all cores), got ", n);
      cpu::set_num_threads(int(n));
      return info.Env().Undefined();
    });
  }

  // copyFromHost(dst: Tensor, src: Float32Array | Int32Array)
  Napi::Value CopyFromHost(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 2, "copyFromHost");
      TensorView dst = to_tensor(info[0], "copyFromHost", "dst");
      void* src = host_array(info[1], dst, "copyFromHost");
      copy_any(dst, host_view(src, dst.dtype == DType::Int32 ? DType::Int32 : DType::Float32, dst));
      return info.Env().Undefined();
    });
  }

  // copyToHost(src: Tensor, dst: Float32Array | Int32Array)
  Napi::Value CopyToHost(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 2, "copyToHost");
      TensorView src = to_tensor(info[0], "copyToHost", "src");
      void* dst = host_array(info[1], src, "copyToHost");
      copy_any(host_view(dst, src.dtype == DType::Int32 ? DType::Int32 : DType::Float32, src), src);
      return info.Env().Undefined();
    });
  }

  Napi::Value Copy(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 2, "copy");
      copy_any(to_tensor(info[0], "copy", "dst"), to_tensor(info[1], "copy", "src"));
      return info.Env().Undefined();
    });
  }

  Napi::Value Fill(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 2, "fill");
      TensorView t = to_tensor(info[0], "fill", "tensor");
      double v = to_number(info[1], "fill", "value");
      MVLLM_ON_DEVICE(t, cpu::fill(t, v), cuda::fill(t, v));
      return info.Env().Undefined();
    });
  }

  Napi::Value Synchronize(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      cuda::synchronize(to_device_index(info[0], "synchronize"));
#endif
      return info.Env().Undefined();
    });
  }

  Napi::Value TimerStart(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      cuda::timer_start(to_device_index(info[0], "timerStart"));
      return info.Env().Undefined();
#else
      no_cuda();
#endif
    });
  }

  Napi::Value TimerStop(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      return Napi::Number::New(info.Env(), cuda::timer_stop(to_device_index(info[0], "timerStop")));
#else
      no_cuda();
#endif
    });
  }

  Napi::Value ProfileEvent(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      return Napi::Number::New(info.Env(), cuda::profile_event(to_device_index(info[0], "profileEvent")));
#else
      no_cuda();
#endif
    });
  }

  Napi::Value ProfileElapsed(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      expect_args(info, 3, "profileElapsed");
      const int device = to_device_index(info[0], "profileElapsed");
      const double a = to_number(info[1], "profileElapsed", "a"), b = to_number(info[2], "profileElapsed", "b");
      if (a != double(int(a)) || b != double(int(b)))
        fail(ErrorKind::Type, "profileElapsed: event ids must be integers, got ", a, " and ", b);
      return Napi::Number::New(info.Env(), cuda::profile_elapsed(device, int(a), int(b)));
#else
      no_cuda();
#endif
    });
  }

  Napi::Value ProfileReset(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      cuda::profile_reset(to_device_index(info[0], "profileReset"));
      return info.Env().Undefined();
#else
      no_cuda();
#endif
    });
  }

  // CUDA graphs. graphBegin(deviceIndex) starts recording the device stream's launches; graphEnd(deviceIndex) returns
  // the instantiated graph as an opaque handle (freed by graphDestroy or when collected); graphAbort(deviceIndex) drops
  // a capture that failed; graphReplay(handle) launches it, or returns false when it must be captured again.
  Napi::Value GraphBegin(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      cuda::graph_begin(to_device_index(info[0], "graphBegin"));
      return info.Env().Undefined();
#else
      no_cuda();
#endif
    });
  }

  Napi::Value GraphEnd(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      cuda::Graph* g = cuda::graph_end(to_device_index(info[0], "graphEnd"));
      auto handle = Napi::External<cuda::Graph>::New(info.Env(), g, [](Napi::Env, cuda::Graph* p) { cuda::graph_delete(p); });
      handle.TypeTag(&kGraphTag);
      return handle;
#else
      no_cuda();
#endif
    });
  }

  Napi::Value GraphAbort(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      cuda::graph_abort(to_device_index(info[0], "graphAbort"));
#endif
      return info.Env().Undefined();
    });
  }

  Napi::Value GraphReplay(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      return Napi::Boolean::New(info.Env(), cuda::graph_replay(to_graph(info, "graphReplay")));
#else
      no_cuda();
#endif
    });
  }

  Napi::Value GraphDestroy(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
#ifdef MINI_VLLM_WITH_CUDA
      cuda::graph_destroy(to_graph(info, "graphDestroy"));
#endif
      return info.Env().Undefined();
    });
  }

  // rangePush(name) / rangePop(): NVTX ranges for Nsight Systems; nothing without CUDA.
  Napi::Value RangePush(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsString())
        fail(ErrorKind::Type, "rangePush: name must be a string");
#ifdef MINI_VLLM_WITH_CUDA
      cuda::range_push(info[0].As<Napi::String>().Utf8Value().c_str());
#endif
      return info.Env().Undefined();
    });
  }

  Napi::Value RangePop(const Napi::CallbackInfo& info) {
#ifdef MINI_VLLM_WITH_CUDA
    cuda::range_pop();
#endif
    return info.Env().Undefined();
  }

  // streamRead(t: float32 CPU contiguous) -> sum of all elements; the benchmarks' read-bandwidth reference.
  Napi::Value StreamRead(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 1, "streamRead");
      TensorView t = to_tensor(info[0], "streamRead", "x");
      if (t.device != Device::CPU) fail(ErrorKind::Type, "streamRead: x must be a CPU tensor");
      Check("streamRead").dtype(t, "x", DType::Float32);
      Check("streamRead").contiguous(t, "x");
      return Napi::Number::New(info.Env(), cpu::stream_read(t));
    });
  }

  // rmsNorm(out, x, weight, eps)
  Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 4, "rmsNorm");
      TensorView out = to_tensor(info[0], "rmsNorm", "out"), x = to_tensor(info[1], "rmsNorm", "x"),
                 w = to_tensor(info[2], "rmsNorm", "weight");
      double eps = to_number(info[3], "rmsNorm", "eps");
      check_rms_norm(out, x, w, eps);
      MVLLM_ON_DEVICE(x, cpu::rms_norm(out, x, w, float(eps)), cuda::rms_norm(out, x, w, float(eps)));
      return info.Env().Undefined();
    });
  }

  // fusedAddRmsNorm(x, residual, weight, eps)
  Napi::Value FusedAddRmsNorm(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 4, "fusedAddRmsNorm");
      TensorView x = to_tensor(info[0], "fusedAddRmsNorm", "x"), r = to_tensor(info[1], "fusedAddRmsNorm", "residual"),
                 w = to_tensor(info[2], "fusedAddRmsNorm", "weight");
      double eps = to_number(info[3], "fusedAddRmsNorm", "eps");
      check_fused_add_rms_norm(x, r, w, eps);
      MVLLM_ON_DEVICE(x, cpu::fused_add_rms_norm(x, r, w, float(eps)), cuda::fused_add_rms_norm(x, r, w, float(eps)));
      return info.Env().Undefined();
    });
  }

  // rotaryEmbedding(positions, query, key | null, headSize, cosSinCache, isNeox)
  Napi::Value RotaryEmbedding(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const char* op = "rotaryEmbedding";
      expect_args(info, 6, op);
      TensorView pos = to_tensor(info[0], op, "positions"), q = to_tensor(info[1], op, "query"),
                 k = to_optional_tensor(info[2], op, "key");
      double head_size = to_number(info[3], op, "headSize");
      TensorView cache = to_tensor(info[4], op, "cosSinCache");
      bool neox = to_bool(info[5], op, "isNeox");
      check_rotary_embedding(pos, q, k, head_size, cache);
      const int64_t hs = int64_t(head_size);
      MVLLM_ON_DEVICE(q, cpu::rotary_embedding(pos, q, k, hs, cache, neox),
                      cuda::rotary_embedding(pos, q, k, hs, cache, neox));
      return info.Env().Undefined();
    });
  }

  // siluAndMul(out, x)
  Napi::Value SiluAndMul(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 2, "siluAndMul");
      TensorView out = to_tensor(info[0], "siluAndMul", "out"), x = to_tensor(info[1], "siluAndMul", "x");
      check_silu_and_mul(out, x);
      MVLLM_ON_DEVICE(x, cpu::silu_and_mul(out, x), cuda::silu_and_mul(out, x));
      return info.Env().Undefined();
    });
  }

  // reshapeAndCache(key, value, keyCache, valueCache, slotMapping)
  Napi::Value ReshapeAndCache(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const char* op = "reshapeAndCache";
      expect_args(info, 5, op);
      TensorView k = to_tensor(info[0], op, "key"), v = to_tensor(info[1], op, "value"),
                 kc = to_tensor(info[2], op, "keyCache"), vc = to_tensor(info[3], op, "valueCache"),
                 slots = to_tensor(info[4], op, "slotMapping");
      check_reshape_and_cache(k, v, kc, vc, slots);
      if (slots.size(0) == 0) return info.Env().Undefined();
      MVLLM_ON_DEVICE(kc, cpu::reshape_and_cache(k, v, kc, vc, slots), cuda::reshape_and_cache(k, v, kc, vc, slots));
      return info.Env().Undefined();
    });
  }

  // pagedAttention(out, query, keyCache, valueCache, queryStartLoc, seqLens, blockTables, scale, maxSeqLen,
  //                maxQueryLen); the two max hints are -1 when unknown.
  Napi::Value PagedAttention(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const char* op = "pagedAttention";
      expect_args(info, 10, op);
      TensorView out = to_tensor(info[0], op, "out"), q = to_tensor(info[1], op, "query"),
                 kc = to_tensor(info[2], op, "keyCache"), vc = to_tensor(info[3], op, "valueCache");
      AttentionMeta m;
      m.query_start_loc = to_tensor(info[4], op, "queryStartLoc");
      m.seq_lens = to_tensor(info[5], op, "seqLens");
      m.block_tables = to_tensor(info[6], op, "blockTables");
      m.scale = to_number(info[7], op, "scale");
      m.max_seq_len = to_hint(info[8], op, "maxSeqLen");
      m.max_query_len = to_hint(info[9], op, "maxQueryLen");
      check_paged_attention(out, q, kc, vc, m);
      if (q.size(0) == 0) return info.Env().Undefined();
      MVLLM_ON_DEVICE(kc, cpu::paged_attention(out, q, kc, vc, m), cuda::paged_attention(out, q, kc, vc, m));
      return info.Env().Undefined();
    });
  }

  // linear(out, x, weight, bias | null)
  Napi::Value Linear(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const char* op = "linear";
      expect_args(info, 4, op);
      TensorView out = to_tensor(info[0], op, "out"), x = to_tensor(info[1], op, "x"),
                 w = to_tensor(info[2], op, "weight"), b = to_optional_tensor(info[3], op, "bias");
      check_linear(out, x, w, b);
      if (out.numel() == 0) return info.Env().Undefined();
      MVLLM_ON_DEVICE(x, cpu::linear(out, x, w, b), cuda::linear(out, x, w, b));
      return info.Env().Undefined();
    });
  }

  // embedding(out, ids, table)
  Napi::Value Embedding(const Napi::CallbackInfo& info) { return Gather(info, "embedding", "ids", "table", 1, 2); }

  // gatherRows(out, x, indices)
  Napi::Value GatherRows(const Napi::CallbackInfo& info) { return Gather(info, "gatherRows", "indices", "x", 2, 1); }

  Napi::Value Gather(const Napi::CallbackInfo& info, const char* op, const char* index_name, const char* table_name,
                     int index_arg, int table_arg) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 3, op);
      TensorView out = to_tensor(info[0], op, "out"), idx = to_tensor(info[index_arg], op, index_name),
                 table = to_tensor(info[table_arg], op, table_name);
      check_gather_rows(op, out, idx, index_name, table, table_name);
      if (idx.size(0) == 0) return info.Env().Undefined();
      MVLLM_ON_DEVICE(table, cpu::gather_rows(op, out, idx, index_name, table),
                      cuda::gather_rows(out, idx, table));
      return info.Env().Undefined();
    });
  }

  // add(out, a, b)
  Napi::Value Add(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 3, "add");
      TensorView out = to_tensor(info[0], "add", "out"), a = to_tensor(info[1], "add", "a"),
                 b = to_tensor(info[2], "add", "b");
      check_add(out, a, b);
      if (out.numel() == 0) return info.Env().Undefined();
      MVLLM_ON_DEVICE(a, cpu::add(out, a, b), cuda::add(out, a, b));
      return info.Env().Undefined();
    });
  }

  // fillUniform(out, low, high, seed)
  Napi::Value FillUniform(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 4, "fillUniform");
      TensorView t = to_tensor(info[0], "fillUniform", "out");
      const double low = to_number(info[1], "fillUniform", "low"), high = to_number(info[2], "fillUniform", "high");
      const double seed = to_number(info[3], "fillUniform", "seed");
      check_fill_uniform(t, low, high, seed);
      if (t.numel() == 0) return info.Env().Undefined();
      MVLLM_ON_DEVICE(t, cpu::fill_uniform(t, float(low), float(high), uint32_t(seed)),
                      cuda::fill_uniform(t, float(low), float(high), uint32_t(seed)));
      return info.Env().Undefined();
    });
  }

  // fmaPeak(seconds) -> GFLOP/s of fp32 FMAs on every CPU thread: the benchmarks' compute limit.
  Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      double s = to_number(info[0], "fmaPeak", "seconds");
      if (!(s > 0 && s <= 60)) fail(ErrorKind::Range, "fmaPeak: seconds must be in (0, 60], got ", s);
      return Napi::Number::New(info.Env(), cpu::fma_peak(s));
    });
  }

  template <typename T>
  static T* typed(const Napi::Value& v, napi_typedarray_type type, const char* type_name, int64_t n, const char* name) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
      fail(ErrorKind::Type, "sampleRows: ", name, " must be a ", type_name);
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    if (int64_t(ta.ElementLength()) != n)
      fail(ErrorKind::Range, "sampleRows: ", name, " has ", ta.ElementLength(), " elements, expected ", n);
    return reinterpret_cast<T*>(static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
  }

  // sampleRows(logits: Float32Array [rows * vocab], rows, vocab, temperature: Float32Array, topK: Int32Array,
  //            topP: Float32Array, minP: Float32Array, uniform: Float64Array, out: Int32Array), all [rows]
  Napi::Value SampleRows(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      expect_args(info, 9, "sampleRows");
      const double rows_d = to_number(info[1], "sampleRows", "rows");
      const double vocab_d = to_number(info[2], "sampleRows", "vocab");
      if (!(rows_d >= 0 && rows_d <= 1e6) || rows_d != double(int64_t(rows_d)))
        fail(ErrorKind::Range, "sampleRows: rows must be a non-negative integer, got ", rows_d);
      if (!(vocab_d >= 1 && vocab_d <= 2147483647.0) || vocab_d != double(int64_t(vocab_d)))
        fail(ErrorKind::Range, "sampleRows: vocab must be a positive integer, got ", vocab_d);
      const int64_t rows = int64_t(rows_d), vocab = int64_t(vocab_d);
      const float* logits = typed<float>(info[0], napi_float32_array, "Float32Array", rows * vocab, "logits");
      const float* temperature = typed<float>(info[3], napi_float32_array, "Float32Array", rows, "temperature");
      const int32_t* top_k = typed<int32_t>(info[4], napi_int32_array, "Int32Array", rows, "topK");
      const float* top_p = typed<float>(info[5], napi_float32_array, "Float32Array", rows, "topP");
      const float* min_p = typed<float>(info[6], napi_float32_array, "Float32Array", rows, "minP");
      const double* uniform = typed<double>(info[7], napi_float64_array, "Float64Array", rows, "uniform");
      int32_t* out = typed<int32_t>(info[8], napi_int32_array, "Int32Array", rows, "out");
      std::vector<cpu::SampleParams> params(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) {
        const float t = temperature[r], p = top_p[r], mp = min_p[r];
        const double u = uniform[r];
        if (!(t >= 0 && std::isfinite(t))) fail(ErrorKind::Range, "sampleRows: temperature[", r, "] = ", t, " must be >= 0");
        if (top_k[r] < 0) fail(ErrorKind::Range, "sampleRows: topK[", r, "] = ", top_k[r], " must be >= 0 (0 = off)");
        if (!(p > 0 && p <= 1)) fail(ErrorKind::Range, "sampleRows: topP[", r, "] = ", p, " must be in (0, 1]");
        if (!(mp >= 0 && mp <= 1)) fail(ErrorKind::Range, "sampleRows: minP[", r, "] = ", mp, " must be in [0, 1]");
        if (!(u >= 0 && u < 1)) fail(ErrorKind::Range, "sampleRows: uniform[", r, "] = ", u, " must be in [0, 1)");
        params[size_t(r)] = {t, top_k[r], p, mp, u};
      }
      for (int64_t i = 0; i < rows * vocab; ++i)
        if (std::isnan(logits[i]) || logits[i] == INFINITY)
          fail(ErrorKind::Range, "sampleRows: logits[", i / vocab, ", ", i % vocab, "] = ", logits[i], " (NaN or +Infinity)");
      cpu::sample_rows(logits, rows, vocab, params.data(), out);
      return info.Env().Undefined();
    });
  }

  // An optional non-negative integer hint; -1 (or undefined/null) means none.
  static int64_t to_hint(const Napi::Value& v, const char* op, const char* name) {
    if (v.IsUndefined() || v.IsNull()) return -1;
    double d = to_number(v, op, name);
    if (d == -1) return -1;
    if (!(d >= 0 && d <= 2147483647.0) || d != double(int64_t(d)))
      fail(ErrorKind::Range, op, ": ", name, " must be a non-negative integer, got ", d);
    return int64_t(d);
  }
};

}  // namespace

AddonData& addon_data(Napi::Env env) { return env.GetInstanceData<Addon>()->data; }

}  // namespace mvllm::binding

// The macro pastes the name into identifiers, so it needs an unqualified one.
using MiniVllmAddon = mvllm::binding::Addon;
NODE_API_ADDON(MiniVllmAddon)
