// Unpacking JS arguments into kernel arguments, and kernel errors into JS exceptions.
#pragma once

#include <napi.h>

#include <string>

#include "../core/error.h"
#include "../core/tensor.h"

namespace mvllm::binding {

// Per-environment (main thread or worker) handles kept by the addon.
struct AddonData {
  Napi::FunctionReference storage_ctor;
  Napi::FunctionReference error_ctor;  // MiniVllmError, registered by lib/native.ts
};

AddonData& addon_data(Napi::Env env);  // defined beside the Addon class that holds it

// A tensor argument: {storage, dtype, shape, strides, offset}. Checks that the view lies inside its storage.
TensorView to_tensor(const Napi::Value& v, const char* op, const char* name);
// The same, but null/undefined gives a view with data == nullptr.
TensorView to_optional_tensor(const Napi::Value& v, const char* op, const char* name);
double to_number(const Napi::Value& v, const char* op, const char* name);
bool to_bool(const Napi::Value& v, const char* op, const char* name);
void expect_args(const Napi::CallbackInfo& info, size_t n, const char* op);

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

}  // namespace mvllm::binding
