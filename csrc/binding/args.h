// Unpacking JS arguments into kernel arguments, and kernel errors into JS exceptions.
#pragma once

#include <napi.h>

#include <string>
#include <type_traits>

#include "../core/error.h"
#include "../core/tensor.h"

namespace mvllm::binding {

// The property names read on every call, made JS strings once per environment (a name given as a C string is
// converted and looked up in V8's string table on each read: a tenth of a small op's call).
enum class Key {
  storage,
  nativeLayout,
  queryStartLoc,
  seqLens,
  blockTables,
  scale,
  maxSeqLen,
  maxQueryLen,
  slidingWindow,
  logitsSoftCap,
  count
};

// Per-environment (main thread or worker) handles kept by the addon.
struct AddonData {
  Napi::FunctionReference storage_ctor;
  Napi::FunctionReference error_ctor;  // MiniVllmError, registered by lib/native.ts
  Napi::ObjectReference keys;          // an array of the Key names in order (N-API 8 cannot reference a string itself)
  void init_keys(Napi::Env env);
};

// The environment's array of Key names (fetch it once per call), and o[k] by it.
Napi::Object property_keys(Napi::Env env);
inline Napi::Value get(const Napi::Object& o, const Napi::Object& keys, Key k) { return o.Get(keys.Get(uint32_t(k))); }

AddonData& addon_data(Napi::Env env);  // defined beside the Addon class that holds it

// A tensor argument: {storage, dtype, shape, strides, offset}. Checks that the view lies inside its storage.
TensorView to_tensor(const Napi::Value& v, const char* op, const char* name);
// The same, but null/undefined gives a view with data == nullptr.
TensorView to_optional_tensor(const Napi::Value& v, const char* op, const char* name);
double to_number(const Napi::Value& v, const char* op, const char* name);
// An optional non-negative integer hint (pagedAttention's maxSeqLen): -1, undefined or null mean none (-1).
int64_t to_hint(const Napi::Value& v, const char* op, const char* name);
// A CUDA device index argument; the runtime checks that the device exists.
int to_device_index(const Napi::Value& v, const char* op);
// What a JS value is, for messages: "number", "array", "null", ...
const char* js_type(const Napi::Value& v);
bool to_bool(const Napi::Value& v, const char* op, const char* name);
void expect_args(const Napi::CallbackInfo& info, size_t n, const char* op);

// Throws Unsupported: this build has no CUDA backend.
[[noreturn]] void no_cuda();

// A call that needs the CUDA backend: the statement where it is compiled in, else Unsupported. MVLLM_IF_CUDA: the
// statement where CUDA is compiled in, else nothing (calls that have nothing to do without a device).
#ifdef MINI_VLLM_WITH_CUDA
constexpr bool kCudaCompiled = true;
#define MVLLM_CUDA_ONLY(...) __VA_ARGS__
#define MVLLM_IF_CUDA(...) __VA_ARGS__
#else
constexpr bool kCudaCompiled = false;
#define MVLLM_CUDA_ONLY(...) ::mvllm::binding::no_cuda()
#define MVLLM_IF_CUDA(...)
#endif

// Converts an mvllm::Error (and anything else C++ throws) into the matching JS exception.
Napi::Error to_js_error(Napi::Env env, const std::exception& e);

// Runs a method body, translating C++ exceptions. Napi::Error passes through untouched.
template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw to_js_error(info.Env(), e);
  }
}

// Runs `body` like guarded() and returns what it returns as a JS value (nothing: undefined; numbers, booleans).
template <typename F>
Napi::Value run(const Napi::CallbackInfo& info, F&& body) {
  return guarded(info, [&]() -> Napi::Value {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      return info.Env().Undefined();
    } else {
      return Napi::Value::From(info.Env(), body());
    }
  });
}

}  // namespace mvllm::binding
