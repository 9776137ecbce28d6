#include "args.h"

#include <cmath>
#include <new>

#include "cpu_graph.h"
#include "storage.h"

namespace mvllm::binding {

const char* js_type(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return v.IsArray() ? "array" : "object";
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_bigint: return "bigint";
  }
  return "value";
}

namespace {

// A non-negative integer below `limit`.
int64_t to_index(double d, int64_t limit, const char* op, const char* what) {
  if (!(d >= 0 && d < double(limit)) || d != std::floor(d))
    fail(ErrorKind::Range, op, ": ", what, " must be an integer in [0, ", limit, "), got ", d);
  return int64_t(d);
}

// The same, read from a JS number.
int64_t to_index(const Napi::Value& v, int64_t limit, const char* op, const char* what) {
  if (!v.IsNumber()) fail(ErrorKind::Type, op, ": ", what, " must be a number, got ", js_type(v));
  return to_index(v.As<Napi::Number>().DoubleValue(), limit, op, what);
}

}  // namespace

void AddonData::init_keys(Napi::Env env) {
  static const char* const names[] = {"storage", "nativeLayout", "queryStartLoc", "seqLens",       "blockTables",
                                      "scale",   "maxSeqLen",    "maxQueryLen",   "slidingWindow", "logitsSoftCap"};
  static_assert(sizeof(names) / sizeof(names[0]) == size_t(Key::count), "one name per Key");
  Napi::Array a = Napi::Array::New(env, size_t(Key::count));
  for (uint32_t i = 0; i < uint32_t(Key::count); ++i) a.Set(i, Napi::String::New(env, names[i]));
  keys = Napi::Persistent(Napi::Object(a));
}

Napi::Object property_keys(Napi::Env env) { return addon_data(env).keys.Value(); }

TensorView to_tensor(const Napi::Value& v, const char* op, const char* name) {
  if (!v.IsObject()) fail(ErrorKind::Type, op, ": ", name, " must be a Tensor, got ", js_type(v));
  Napi::Object o = v.As<Napi::Object>();
  const napi_env env = v.Env();
  const Napi::Object keys = property_keys(env);
  Napi::Value sv = get(o, keys, Key::storage);
  // Storage objects carry a type tag (storage.cc); instanceof alone would admit Object.create(Storage.prototype),
  // which wraps nothing, and an object another addon wrapped would unwrap to a pointer that is not a Storage.
  bool tagged = false;
  if (!sv.IsObject() || napi_check_object_type_tag(env, sv, &kStorageTag, &tagged) != napi_ok || !tagged)
    fail(ErrorKind::Type, op, ": ", name, " must be a Tensor (no native storage found)");
  void* wrapped = nullptr;
  if (napi_unwrap(env, sv, &wrapped) != napi_ok || !wrapped)
    fail(ErrorKind::Type, op, ": ", name, " must be a Tensor (its storage was never constructed)");
  Storage* s = static_cast<Storage*>(wrapped);  // ObjectWrap wraps the T* itself
  if (!s->data()) fail(ErrorKind::Type, op, ": ", name, " is a disposed tensor");
  if (CpuGraph* graph = cpu_graph_recording()) graph->pin(env, sv, s);  // the graph keeps what it reads alive

  TensorView t;
  t.device = s->device();
  t.device_index = s->device_index();
  // A Tensor's layout in one array (lib/tensor.ts: nativeLayout), read at once: [dtype, ndim, offset, shape, strides].
  // Anything else that claims to be a tensor (a spread copy, a hand-made object) is read field by field.
  int64_t offset = 0;
  Napi::Value lv = get(o, keys, Key::nativeLayout);
  napi_typedarray_type lt = napi_int8_array;
  size_t len = 0;
  void* ld = nullptr;
  if (lv.IsTypedArray() && napi_get_typedarray_info(env, lv, &lt, &len, &ld, nullptr, nullptr) == napi_ok &&
      lt == napi_float64_array) {
    const double* d = static_cast<const double*>(ld);
    const double code = len >= 3 ? d[0] : -1, ndim = len >= 3 ? d[1] : -1;
    if (!(code >= 0 && code <= 3) || code != std::floor(code) || !(ndim >= 0 && ndim <= kMaxDims) ||
        ndim != std::floor(ndim) || len != size_t(3 + 2 * ndim))
      fail(ErrorKind::Type, op, ": ", name, " has a malformed nativeLayout");
    t.dtype = DType(int(code));
    t.ndim = int(ndim);
    for (int i = 0; i < t.ndim; ++i) {
      t.shape[i] = to_index(d[3 + i], int64_t(1) << 31, op, "a tensor dim");
      t.strides[i] = to_index(d[3 + t.ndim + i], int64_t(1) << 40, op, "a tensor stride");
    }
    offset = to_index(d[2], int64_t(1) << 50, op, "a tensor offset");
  } else {
    Napi::Value dv = o.Get("dtype");
    if (!dv.IsString() || !parse_dtype(dv.As<Napi::String>().Utf8Value(), &t.dtype))
      fail(ErrorKind::Type, op, ": ", name, " has an unknown dtype");
    Napi::Value shv = o.Get("shape"), stv = o.Get("strides");
    if (!shv.IsArray() || !stv.IsArray()) fail(ErrorKind::Type, op, ": ", name, " must have shape and strides arrays");
    Napi::Array sh = shv.As<Napi::Array>(), st = stv.As<Napi::Array>();
    if (sh.Length() > uint32_t(kMaxDims) || st.Length() != sh.Length())
      fail(ErrorKind::Range, op, ": ", name, " must have at most ", kMaxDims, " dims and one stride per dim");
    t.ndim = int(sh.Length());
    for (int i = 0; i < t.ndim; ++i) {
      t.shape[i] = to_index(sh.Get(uint32_t(i)), int64_t(1) << 31, op, "a tensor dim");
      t.strides[i] = to_index(st.Get(uint32_t(i)), int64_t(1) << 40, op, "a tensor stride");
    }
    offset = to_index(o.Get("offset"), int64_t(1) << 50, op, "a tensor offset");
  }
  // Bounds in 128-bit arithmetic so no shape/stride combination can overflow the check itself.
  unsigned __int128 last = 0;
  bool empty = false;
  for (int i = 0; i < t.ndim; ++i) {
    if (t.shape[i] == 0)
      empty = true;
    else
      last += (unsigned __int128)(t.shape[i] - 1) * (unsigned __int128)t.strides[i];
  }
  const size_t item = dtype_size(t.dtype);
  if (!empty && (offset + last + 1) * item > s->byte_length())
    fail(ErrorKind::Range, op, ": ", name, " view ", t.shape_str(), " at offset ", offset,
         " reaches past its storage (", s->byte_length(), " bytes)");
  t.data = static_cast<char*>(s->data()) + offset * item;
  return t;
}

TensorView to_optional_tensor(const Napi::Value& v, const char* op, const char* name) {
  if (v.IsNull() || v.IsUndefined()) return TensorView{};
  return to_tensor(v, op, name);
}

int64_t to_hint(const Napi::Value& v, const char* op, const char* name) {
  if (v.IsUndefined() || v.IsNull()) return -1;
  const double d = to_number(v, op, name);
  if (d == -1) return -1;
  if (!(d >= 0 && d <= 2147483647.0) || d != double(int64_t(d)))
    fail(ErrorKind::Range, op, ": ", name, " must be a non-negative integer, got ", d);
  return int64_t(d);
}

int to_device_index(const Napi::Value& v, const char* op) {
  const double d = to_number(v, op, "deviceIndex");
  if (!(d >= 0 && d < 64) || d != double(int(d)))
    fail(ErrorKind::Range, op, ": deviceIndex must be an integer in [0, 64), got ", d);
  return int(d);
}

void no_cuda() { fail(ErrorKind::Unsupported, "this build of mini-vllm has no CUDA backend (built without nvcc)"); }

double to_number(const Napi::Value& v, const char* op, const char* name) {
  if (!v.IsNumber()) fail(ErrorKind::Type, op, ": ", name, " must be a number, got ", js_type(v));
  return v.As<Napi::Number>().DoubleValue();
}

bool to_bool(const Napi::Value& v, const char* op, const char* name) {
  if (!v.IsBoolean()) fail(ErrorKind::Type, op, ": ", name, " must be a boolean, got ", js_type(v));
  return v.As<Napi::Boolean>().Value();
}

void expect_args(const Napi::CallbackInfo& info, size_t n, const char* op) {
  if (info.Length() < n) fail(ErrorKind::Type, op, ": expected ", n, " arguments, got ", info.Length());
}

Napi::Error to_js_error(Napi::Env env, const std::exception& e) {
  const auto* me = dynamic_cast<const Error*>(&e);
  const char* code = me                                        ? error_code(me->kind())
                     : dynamic_cast<const std::bad_alloc*>(&e) ? error_code(ErrorKind::OutOfMemory)
                                                               : "ERR_INTERNAL";
  Napi::Error err;
  if (me && me->kind() == ErrorKind::Type) {
    err = Napi::TypeError::New(env, e.what());
  } else if (me && me->kind() == ErrorKind::Range) {
    err = Napi::RangeError::New(env, e.what());
  } else if (!addon_data(env).error_ctor.IsEmpty()) {
    Napi::Object obj = addon_data(env).error_ctor.New({Napi::String::New(env, e.what()), Napi::String::New(env, code)});
    err = Napi::Error(env, obj);
  } else {
    err = Napi::Error::New(env, e.what());
  }
  err.Set("code", Napi::String::New(env, code));
  return err;
}

}  // namespace mvllm::binding
