// Memory as JS sees it: copies between tensors and host typed arrays (converting dtypes on the host where they
// differ), fill, and what the Storage objects hold.
#include <napi.h>

#include <vector>

#include "../core/check.h"
#include "../cpu/isa.h"
#include "args.h"
#include "cpu_graph.h"
#include "runtime.h"
#include "storage.h"
#ifdef MINI_VLLM_WITH_CUDA
#include "../cuda/api.h"
#endif

namespace mvllm::binding {
namespace {

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
  const char* want = want_int ? "Int32Array" : "Float32Array";
  if (!v.IsTypedArray()) fail(ErrorKind::Type, op, ": expected a ", want, ", got ", js_type(v));
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != (want_int ? napi_int32_array : napi_float32_array))
    fail(ErrorKind::Type, op, ": a ", dtype_name(t.dtype), " tensor needs a ", want);
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
// Host <-> device for a contiguous CUDA tensor `dev`, converting on the host when the dtypes differ (staged through a
// host buffer of the device's dtype).
void transfer(const TensorView& host, const TensorView& dev, bool to_device) {
  if (!dev.is_contiguous())
    fail(ErrorKind::Range, "copy: a CUDA ", to_device ? "destination filled from" : "source read to",
         " the host must be contiguous");
  const size_t bytes = size_t(dev.numel()) * dev.itemsize();
  const bool direct = host.dtype == dev.dtype && host.is_contiguous();
  std::vector<char> staged(direct ? 0 : bytes);
  void* buffer = direct ? host.data : staged.data();
  if (to_device) {
    if (!direct) cpu::kernels().copy(host_view(buffer, dev.dtype, dev), host);
    cuda::memcpy_htod(dev.device_index, dev.data, buffer, bytes);
  } else {
    cuda::memcpy_dtoh(dev.device_index, buffer, dev.data, bytes);
    if (!direct) cpu::kernels().copy(host, host_view(buffer, dev.dtype, dev));
  }
}
#endif

void copy_any(const TensorView& dst, const TensorView& src) {
  check_same_shape(dst, src, "copy");
  if (dst.numel() == 0) return;
  if (dst.device == Device::CPU && src.device == Device::CPU) return cpu::kernels().copy(dst, src);
#ifdef MINI_VLLM_WITH_CUDA
  if (dst.device == Device::CUDA && src.device == Device::CUDA) {
    if (dst.device_index != src.device_index) fail(ErrorKind::Range, "copy: between two CUDA devices is not supported");
    return cuda::copy(dst, src);
  }
  if (dst.device == Device::CUDA) return transfer(src, dst, true);
  return transfer(dst, src, false);
#else
  no_cuda();
#endif
}

// The host side of a host array copy: float32 for float tensors, int32 for int32 ones.
DType host_dtype(const TensorView& t) { return t.dtype == DType::Int32 ? DType::Int32 : DType::Float32; }

}  // namespace

// copyFromHost(dst: Tensor, src: Float32Array | Int32Array)
Napi::Value copy_from_host(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    refuse_while_recording("copyFromHost");
    expect_args(info, 2, "copyFromHost");
    const TensorView dst = to_tensor(info[0], "copyFromHost", "dst");
    void* src = host_array(info[1], dst, "copyFromHost");
    copy_any(dst, host_view(src, host_dtype(dst), dst));
  });
}

// copyToHost(src: Tensor, dst: Float32Array | Int32Array)
Napi::Value copy_to_host(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    refuse_while_recording("copyToHost");
    expect_args(info, 2, "copyToHost");
    const TensorView src = to_tensor(info[0], "copyToHost", "src");
    void* dst = host_array(info[1], src, "copyToHost");
    copy_any(host_view(dst, host_dtype(src), src), src);
  });
}

// copy(dst: Tensor, src: Tensor): any devices, float dtypes converted
Napi::Value copy(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    refuse_while_recording("copy");
    expect_args(info, 2, "copy");
    copy_any(to_tensor(info[0], "copy", "dst"), to_tensor(info[1], "copy", "src"));
  });
}

// fill(tensor: Tensor, value: number)
Napi::Value fill(const Napi::CallbackInfo& info) {
  return run(info, [&] {
    refuse_while_recording("fill");
    expect_args(info, 2, "fill");
    const TensorView t = to_tensor(info[0], "fill", "tensor");
    const double v = to_number(info[1], "fill", "value");
    if (t.device == Device::CPU)
      cpu::kernels().fill(t, v);
    else
      MVLLM_CUDA_ONLY(cuda::fill(t, v));
  });
}

// memoryStats() -> {cpu: {allocations, bytes, peakBytes}, cuda: {...}}: what Storage objects hold right now, and the
// most they held since resetPeakMemory.
Napi::Value memory_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (Device d : {Device::CPU, Device::CUDA}) {
    const MemoryCounters c = memory_counters(d);
    Napi::Object o = Napi::Object::New(env);
    o.Set("allocations", double(c.allocations));
    o.Set("bytes", double(c.bytes));
    o.Set("peakBytes", double(c.peak_bytes));
    out.Set(device_name(d), o);
  }
  return out;
}

// resetPeakMemory(): each device's peak restarts at what is held now.
Napi::Value reset_peak_memory(const Napi::CallbackInfo& info) {
  for (Device d : {Device::CPU, Device::CUDA}) reset_peak(d);
  return info.Env().Undefined();
}

// deviceMemory(deviceIndex) -> {free, total}: the CUDA device's memory as the driver counts it (every process).
Napi::Value device_memory(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    [[maybe_unused]] const int index = to_device_index(info[0], "deviceMemory");
    size_t free_bytes = 0, total_bytes = 0;
    MVLLM_CUDA_ONLY(cuda::require_device(index); cuda::mem_info(index, &free_bytes, &total_bytes));
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("free", double(free_bytes));
    o.Set("total", double(total_bytes));
    return o;
  });
}

}  // namespace mvllm::binding
