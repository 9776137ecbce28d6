// TensorView: what a kernel sees of a tensor. Non-owning; strides and offset are in elements.
#pragma once

#include <cstdint>
#include <string>

#include "dtype.h"

namespace mvllm {

enum class Device : int { CPU = 0, CUDA = 1 };

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

constexpr int kMaxDims = 8;

struct TensorView {
  void* data = nullptr;  // first element (storage base + offset)
  Device device = Device::CPU;
  int device_index = 0;
  DType dtype = DType::Float32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  int64_t size(int d) const { return shape[d < 0 ? d + ndim : d]; }
  int64_t stride(int d) const { return strides[d < 0 ? d + ndim : d]; }
  size_t itemsize() const { return dtype_size(dtype); }

  bool is_contiguous() const {
    int64_t expect = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != expect) return false;
      expect *= shape[i];
    }
    return true;
  }

  template <typename T>
  T* ptr() const {
    return static_cast<T*>(data);
  }

  std::string shape_str() const {
    std::string s = "[";
    for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }
};

// An optional tensor argument (rotaryEmbedding's key, linear's bias): data == nullptr when JS passed null.
struct MaybeTensor : TensorView {};

// A host typed array argument (sampleRows): its first element and length.
template <typename T>
struct HostArray {
  T* data = nullptr;
  int64_t size = 0;
};

}  // namespace mvllm
