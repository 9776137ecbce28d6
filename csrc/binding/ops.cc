// The op entry points. Every row of MVLLM_FOR_EACH_OP (core/op_checks.h) becomes one JS function of `addon.ops` that
// reads its arguments as the types its check takes, runs the check, and calls the entry point of the backend its
// tensors live on. Nothing here is written per op: a new row in the list is a new function.
#include <napi.h>

#include <array>
#include <cmath>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/op_checks.h"
#include "../cpu/isa.h"
#include "args.h"
#include "cpu_graph.h"
#ifdef MINI_VLLM_WITH_CUDA
#include "../cuda/api.h"
#endif

namespace mvllm::binding {
namespace {

// ---- one JS argument, read as the C++ type the check and the kernels take ----

template <typename T>
struct Arg;

template <>
struct Arg<TensorView> {
  static TensorView read(const Napi::Value& v, const char* op, const char* name) { return to_tensor(v, op, name); }
};

template <>
struct Arg<MaybeTensor> {
  static MaybeTensor read(const Napi::Value& v, const char* op, const char* name) {
    return MaybeTensor{to_optional_tensor(v, op, name)};
  }
};

template <>
struct Arg<double> {
  static double read(const Napi::Value& v, const char* op, const char* name) { return to_number(v, op, name); }
};

template <>
struct Arg<bool> {
  static bool read(const Napi::Value& v, const char* op, const char* name) { return to_bool(v, op, name); }
};

Napi::Object to_object(const Napi::Value& v, const char* op, const char* name) {
  if (!v.IsObject() || v.IsArray()) fail(ErrorKind::Type, op, ": ", name, " must be an object, got ", js_type(v));
  return v.As<Napi::Object>();
}

// pagedAttention's meta: {queryStartLoc, seqLens, blockTables, scale, maxSeqLen?, maxQueryLen?, slidingWindow?,
// logitsSoftCap?}
template <>
struct Arg<AttentionMeta> {
  static AttentionMeta read(const Napi::Value& v, const char* op, const char* name) {
    const Napi::Object o = to_object(v, op, name);
    const Napi::Object keys = property_keys(v.Env());
    AttentionMeta m;
    m.query_start_loc = to_tensor(get(o, keys, Key::queryStartLoc), op, "meta.queryStartLoc");
    m.seq_lens = to_tensor(get(o, keys, Key::seqLens), op, "meta.seqLens");
    m.block_tables = to_tensor(get(o, keys, Key::blockTables), op, "meta.blockTables");
    m.scale = to_number(get(o, keys, Key::scale), op, "meta.scale");
    m.max_seq_len = to_hint(get(o, keys, Key::maxSeqLen), op, "meta.maxSeqLen");
    m.max_query_len = to_hint(get(o, keys, Key::maxQueryLen), op, "meta.maxQueryLen");
    // 0, absent or null: no window, no cap
    const Napi::Value w = get(o, keys, Key::slidingWindow), cap = get(o, keys, Key::logitsSoftCap);
    m.sliding_window = w.IsUndefined() || w.IsNull() ? 0 : to_hint(w, op, "meta.slidingWindow");
    if (m.sliding_window < 0)
      fail(ErrorKind::Range, op, ": meta.slidingWindow must be a non-negative integer, got ", m.sliding_window);
    m.logits_soft_cap = cap.IsUndefined() || cap.IsNull() ? 0 : to_number(cap, op, "meta.logitsSoftCap");
    if (!(m.logits_soft_cap >= 0 && std::isfinite(m.logits_soft_cap)))
      fail(ErrorKind::Range, op, ": meta.logitsSoftCap must be a finite number >= 0, got ", m.logits_soft_cap);
    return m;
  }
};

// The typed array that holds T: Float32Array, Int32Array or Float64Array.
template <typename T>
constexpr std::pair<napi_typedarray_type, const char*> typed_array_of() {
  if constexpr (std::is_same_v<T, float>) return {napi_float32_array, "Float32Array"};
  if constexpr (std::is_same_v<T, int32_t>) return {napi_int32_array, "Int32Array"};
  if constexpr (std::is_same_v<T, double>) return {napi_float64_array, "Float64Array"};
}

template <typename T>
struct Arg<HostArray<T>> {
  static HostArray<T> read(const Napi::Value& v, const char* op, const char* name) {
    constexpr auto kind = typed_array_of<std::remove_const_t<T>>();
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kind.first)
      fail(ErrorKind::Type, op, ": ", name, " must be a ", kind.second, ", got ", js_type(v));
    const Napi::TypedArray ta = v.As<Napi::TypedArray>();
    return {reinterpret_cast<T*>(static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset()),
            int64_t(ta.ElementLength())};
  }
};

// sampleRows' params: {temperature, topK, topP, minP, uniform}, each a typed array of one entry per row
template <>
struct Arg<SampleRowsParams> {
  static SampleRowsParams read(const Napi::Value& v, const char* op, const char* name) {
    const Napi::Object o = to_object(v, op, name);
    SampleRowsParams p;
    p.temperature = Arg<HostArray<const float>>::read(o.Get("temperature"), op, "params.temperature");
    p.top_k = Arg<HostArray<const int32_t>>::read(o.Get("topK"), op, "params.topK");
    p.top_p = Arg<HostArray<const float>>::read(o.Get("topP"), op, "params.topP");
    p.min_p = Arg<HostArray<const float>>::read(o.Get("minP"), op, "params.minP");
    p.uniform = Arg<HostArray<const double>>::read(o.Get("uniform"), op, "params.uniform");
    return p;
  }
};

// ---- one op: its names, its check and its two entry points ----

template <typename... A>
struct Op {
  const char* name;
  std::array<const char*, sizeof...(A)> arg_names;
  bool has_cuda;  // the op has a CUDA kernel (whether or not this build compiled it)
  void (*check)(A...);
  void (*cpu::Kernels::*cpu)(A...);  // its slot in the table of the CPU level in use (cpu/isa.h)
  void (*cuda)(A...);                // null: the op has no CUDA kernel, or this build has no CUDA backend
};

// The device an op runs on is its first tensor's; an op of host arrays (sampleRows) runs on the CPU.
inline const TensorView* tensor_of(const TensorView& t) { return &t; }
template <typename T>
const TensorView* tensor_of(const T&) {
  return nullptr;
}
template <typename... T>
const TensorView* first_tensor(const T&... args) {
  const TensorView* found = nullptr;
  ((found = found ? found : tensor_of(args)), ...);
  return found;
}

// Arguments that point into JS typed arrays, which a CPU graph cannot keep: their ops are refused while recording.
template <typename T>
constexpr bool kHostMemory = false;
template <typename T>
constexpr bool kHostMemory<HostArray<T>> = true;
template <>
constexpr bool kHostMemory<SampleRowsParams> = true;

// While this thread records a CPU graph: the op, checked, is kept to run at each replay instead of now.
template <typename... A, typename Args>
void record(CpuGraph& graph, const Op<A...>& op, Args&& args) {
  if constexpr ((kHostMemory<std::decay_t<A>> || ...)) {
    fail(ErrorKind::Unsupported, op.name, ": reads host arrays, which a CPU graph cannot record");
  } else {
    graph.add([kernel = cpu::kernels().*op.cpu, args = std::forward<Args>(args)] { std::apply(kernel, args); });
  }
}

template <typename... A, size_t... I>
void call(const Op<A...>& op, const Napi::CallbackInfo& info, std::index_sequence<I...>) {
  expect_args(info, sizeof...(A), op.name);
  // Braced initialisation reads the arguments left to right, so the first bad one is the one reported.
  std::tuple<std::decay_t<A>...> args{Arg<std::decay_t<A>>::read(info[I], op.name, op.arg_names[I])...};
  std::apply(op.check, args);
  const TensorView* first = first_tensor(std::get<I>(args)...);
  if (first && first->numel() == 0) return;  // every op's first tensor spans its work: nothing to compute
  if (!first || first->device == Device::CPU) {
    if (CpuGraph* graph = cpu_graph_recording()) return record(*graph, op, std::move(args));
    return std::apply(cpu::kernels().*op.cpu, args);
  }
  refuse_while_recording(op.name);
  if (!op.cuda) {
    if (op.has_cuda) no_cuda();
    fail(ErrorKind::Unsupported, op.name, ": runs on the CPU only");
  }
  std::apply(op.cuda, args);
}

template <typename T>
struct Same {
  using type = T;
};

template <typename... A, size_t N>
Op<A...> make_op(const char* name, const char* const (&arg_names)[N], bool has_cuda, void (*check)(A...),
                 typename Same<void (*cpu::Kernels::*)(A...)>::type cpu, typename Same<void (*)(A...)>::type cuda) {
  static_assert(N == sizeof...(A), "an op's argument names must match its check's parameters");
  Op<A...> op{name, {}, has_cuda, check, cpu, cuda};
  for (size_t i = 0; i < N; ++i) op.arg_names[i] = arg_names[i];
  return op;
}

template <typename... A>
void add_op(Napi::Env env, Napi::Object ops, const Op<A...>& op) {
  auto body = [](const Napi::CallbackInfo& info) -> Napi::Value {
    const auto& op = *static_cast<const Op<A...>*>(info.Data());
    return run(info, [&] { call(op, info, std::index_sequence_for<A...>{}); });
  };
  Napi::Function fn = Napi::Function::New(env, body, op.name, const_cast<Op<A...>*>(&op));
  // The contract as this build declares it, for the registry test to hold lib/ops' declarations to.
  Napi::Array names = Napi::Array::New(env, sizeof...(A));
  for (size_t i = 0; i < sizeof...(A); ++i) names.Set(uint32_t(i), op.arg_names[i]);
  Napi::Array devices = Napi::Array::New(env);
  devices.Set(0u, "cpu");
  if (op.has_cuda) devices.Set(1u, "cuda");
  fn.Set("argNames", names);
  fn.Set("devices", devices);
  ops.Set(op.name, fn);
}

#ifdef MINI_VLLM_WITH_CUDA
#define MVLLM_CUDA_ENTRY_CPU_CUDA(name) &cuda::name
#else
#define MVLLM_CUDA_ENTRY_CPU_CUDA(name) nullptr
#endif
#define MVLLM_CUDA_ENTRY_CPU(name) nullptr
#define MVLLM_HAS_CUDA_CPU_CUDA true
#define MVLLM_HAS_CUDA_CPU false

}  // namespace

Napi::Object make_ops(Napi::Env env) {
  Napi::Object ops = Napi::Object::New(env);
  // One static Op per row: the JS function finds it through its data pointer.
#define MVLLM_ADD_OP(js_name, name, devices, ...)                                                                \
  {                                                                                                              \
    static const char* const names[] = {__VA_ARGS__};                                                            \
    static const auto op = make_op(#js_name, names, MVLLM_HAS_CUDA_##devices, check_##name, &cpu::Kernels::name, \
                                   MVLLM_CUDA_ENTRY_##devices(name));                                            \
    add_op(env, ops, op);                                                                                        \
  }
  MVLLM_FOR_EACH_OP(MVLLM_ADD_OP)
#undef MVLLM_ADD_OP
  return ops;
}

}  // namespace mvllm::binding
