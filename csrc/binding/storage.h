// Storage: one allocation on one device, owned by a JS object. Freed by free() or by the finaliser, once.
#pragma once

#include <napi.h>

#include "../core/tensor.h"

namespace mvllm::binding {

// Live allocations and bytes per device, over every environment (main thread and workers).
struct MemoryCounters {
  int64_t allocations;
  int64_t bytes;
  int64_t peak_bytes;  // the most `bytes` has been since the last reset_peak
};
MemoryCounters memory_counters(Device device);
void reset_peak(Device device);

// Every constructed Storage carries this tag, so an argument is known to wrap a Storage before it is unwrapped.
inline constexpr napi_type_tag kStorageTag = {0x6d696e692d766c6cULL, 0x6d2d73746f726167ULL};

class Storage : public Napi::ObjectWrap<Storage> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Storage(const Napi::CallbackInfo& info);
  ~Storage() override;
  void Finalize(Napi::Env env) override;

  void* data() const { return data_; }
  Device device() const { return device_; }
  int device_index() const { return device_index_; }
  size_t byte_length() const { return bytes_; }

 private:
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value GetByteLength(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetDeviceIndex(const Napi::CallbackInfo& info);
  void release() noexcept;

  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_ = Device::CPU;
  int device_index_ = 0;
  int64_t accounted_ = 0;  // host bytes reported to V8 as external memory, not yet given back
};

}  // namespace mvllm::binding
