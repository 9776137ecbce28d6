#include "storage.h"

#include <atomic>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "../core/error.h"
#include "args.h"
#include "cpu_graph.h"
#ifdef MINI_VLLM_WITH_CUDA
#include "../cuda/api.h"
#endif

namespace mvllm::binding {
namespace {

std::atomic<int64_t> g_allocations[2];
std::atomic<int64_t> g_bytes[2];
std::atomic<int64_t> g_peak[2];

void count(Device d, int64_t allocations, int64_t bytes) {
  g_allocations[int(d)] += allocations;
  const int64_t now = g_bytes[int(d)] += bytes;
  int64_t peak = g_peak[int(d)].load();
  while (now > peak && !g_peak[int(d)].compare_exchange_weak(peak, now)) {
  }
}

}  // namespace

MemoryCounters memory_counters(Device device) {
  return {g_allocations[int(device)].load(), g_bytes[int(device)].load(), g_peak[int(device)].load()};
}

void reset_peak(Device device) { g_peak[int(device)] = g_bytes[int(device)].load(); }

Napi::Function Storage::Define(Napi::Env env) {
  return DefineClass(
      env, "Storage",
      {InstanceMethod<&Storage::Free>("free"), InstanceAccessor<&Storage::GetDisposed>("disposed"),
       InstanceAccessor<&Storage::GetByteLength>("byteLength"), InstanceAccessor<&Storage::GetDevice>("device"),
       InstanceAccessor<&Storage::GetDeviceIndex>("deviceIndex")});
}

namespace {

// Host memory for a tensor. Large ones (weights, the KV cache) start on a 2 MiB boundary and ask Linux for transparent
// huge pages: a decode step walks hundreds of MiB in short runs (a KV head's rows are a slot apart), and with 4 KiB
// pages, nested under a VM's own, the TLB misses cost more than the reads (decode attention read ~25% of the
// bandwidth). Where the kernel has THP off, madvise fails quietly and the pages stay small.
void* alloc_host(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  if (bytes < kHuge) return std::aligned_alloc(64, bytes);
  void* p = nullptr;
  if (posix_memalign(&p, kHuge, bytes) != 0) return nullptr;
#if defined(__linux__)
  madvise(p, bytes & ~(size_t(4095)), MADV_HUGEPAGE);
#endif
  return p;
}

}  // namespace

// new Storage(device: 'cpu' | 'cuda', deviceIndex: number, byteLength: number)
Storage::Storage(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Storage>(info) {
  guarded(info, [&]() -> Napi::Value {
    refuse_while_recording("Storage (allocating)");
    expect_args(info, 3, "Storage");
    if (napi_type_tag_object(info.Env(), info.This(), &kStorageTag) != napi_ok)
      fail(ErrorKind::Type, "Storage: the new object could not be tagged (construct it with new Storage(...))");
    if (!info[0].IsString()) fail(ErrorKind::Type, "Storage: device must be 'cpu' or 'cuda'");
    std::string dev = info[0].As<Napi::String>().Utf8Value();
    double index = to_number(info[1], "Storage", "deviceIndex");
    double bytes = to_number(info[2], "Storage", "byteLength");
    if (!(bytes >= 0 && bytes <= 9.0e15) || bytes != double(int64_t(bytes)))
      fail(ErrorKind::Range, "Storage: byteLength must be an integer in [0, 2^53), got ", bytes);
    if (!(index >= 0 && index < 64) || index != double(int(index)))
      fail(ErrorKind::Range, "Storage: deviceIndex must be an integer in [0, 64), got ", index);
    bytes_ = size_t(bytes);
    device_index_ = int(index);
    if (dev == "cpu") {
      device_ = Device::CPU;
      // 64-byte aligned (a cache line, and any vector load), rounded up as aligned_alloc requires.
      size_t rounded = ((bytes_ + 63) / 64) * 64;
      data_ = alloc_host(rounded ? rounded : 64);
      if (!data_) fail(ErrorKind::OutOfMemory, "out of host memory allocating ", bytes_, " bytes");
      accounted_ = int64_t(rounded);
      Napi::MemoryManagement::AdjustExternalMemory(info.Env(), accounted_);
    } else if (dev == "cuda") {
      device_ = Device::CUDA;
#ifdef MINI_VLLM_WITH_CUDA
      data_ = cuda::alloc(device_index_, bytes_);
#else
      fail(ErrorKind::Unsupported, "this build of mini-vllm has no CUDA backend (built without nvcc)");
#endif
    } else {
      fail(ErrorKind::Type, "Storage: device must be 'cpu' or 'cuda', got '", dev, "'");
    }
    count(device_, 1, int64_t(bytes_));
    return info.Env().Undefined();
  });
}

void Storage::release() noexcept {
  if (!data_) return;
  count(device_, -1, -int64_t(bytes_));
  if (device_ == Device::CPU) {
    std::free(data_);
#ifdef MINI_VLLM_WITH_CUDA
  } else {
    cuda::release(device_index_, data_);
#endif
  }
  data_ = nullptr;
}

Storage::~Storage() { release(); }

void Storage::Finalize(Napi::Env env) {
  if (accounted_) Napi::MemoryManagement::AdjustExternalMemory(env, -accounted_);
  accounted_ = 0;
  release();
}

Napi::Value Storage::Free(const Napi::CallbackInfo& info) {
  if (accounted_) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), -accounted_);
  accounted_ = 0;
  release();
  return info.Env().Undefined();
}

Napi::Value Storage::GetDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !data_); }
Napi::Value Storage::GetByteLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(bytes_));
}
Napi::Value Storage::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), device_name(device_));
}
Napi::Value Storage::GetDeviceIndex(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), device_index_);
}

}  // namespace mvllm::binding
