// Argument checks that throw: every op validates its tensors here before any backend touches memory.
#pragma once

#include <cmath>
#include <initializer_list>

#include "error.h"
#include "tensor.h"

namespace mvllm {

// Checks for one op call; messages read "<op>: <arg> ...".
class Check {
 public:
  explicit Check(const char* op) : op_(op) {}

  void float_dtype(const TensorView& t, const char* name) const {
    if (!is_float(t.dtype))
      fail(ErrorKind::Type, op_, ": ", name, " must have a float dtype (float32, float16, bfloat16), got ",
           dtype_name(t.dtype));
  }

  void dtype(const TensorView& t, const char* name, DType expected) const {
    if (t.dtype != expected)
      fail(ErrorKind::Type, op_, ": ", name, " must have dtype ", dtype_name(expected), ", got ", dtype_name(t.dtype));
  }

  void same_dtype(const TensorView& t, const char* name, const TensorView& ref, const char* ref_name) const {
    if (t.dtype != ref.dtype)
      fail(ErrorKind::Type, op_, ": ", name, " dtype ", dtype_name(t.dtype), " does not match ", ref_name, " dtype ",
           dtype_name(ref.dtype));
  }

  void same_device(const TensorView& t, const char* name, const TensorView& ref, const char* ref_name) const {
    if (t.device != ref.device || t.device_index != ref.device_index)
      fail(ErrorKind::Type, op_, ": ", name, " is on ", device_name(t.device), " but ", ref_name, " is on ",
           device_name(ref.device), "; all tensors of one op must share a device");
  }

  // layout names the dims, e.g. "[numTokens, hidden]".
  void ndim(const TensorView& t, const char* name, int n, const char* layout) const {
    if (t.ndim != n)
      fail(ErrorKind::Range, op_, ": ", name, " must be ", n, "-D ", layout, ", got shape ", t.shape_str());
  }

  void dim(const TensorView& t, const char* name, int d, int64_t expected, const char* what) const {
    if (t.size(d) != expected)
      fail(ErrorKind::Range, op_, ": ", name, " shape ", t.shape_str(), " has dim ", d, " = ", t.size(d), ", expected ",
           expected, " (", what, ")");
  }

  void contiguous(const TensorView& t, const char* name) const {
    if (!t.is_contiguous()) fail(ErrorKind::Range, op_, ": ", name, " must be contiguous");
  }

  // Rows may be strided (a view into a wider tensor) but each row must be dense.
  void rows_dense(const TensorView& t, const char* name) const {
    if (t.ndim >= 1 && t.size(-1) > 1 && t.stride(-1) != 1)
      fail(ErrorKind::Range, op_, ": ", name, " must have a contiguous last dimension");
    for (int i = 0; i + 1 < t.ndim; ++i)
      if (t.shape[i] > 1 && t.strides[i] < t.size(-1))
        fail(ErrorKind::Range, op_, ": ", name, " rows overlap (stride ", t.strides[i], " < row length ", t.size(-1),
             ")");
  }

  void positive_finite(double v, const char* name) const {
    if (!std::isfinite(v) || v <= 0) fail(ErrorKind::Range, op_, ": ", name, " must be a finite number > 0, got ", v);
  }

  void distinct(const TensorView& a, const char* an, const TensorView& b, const char* bn) const {
    if (a.data == b.data && a.numel() > 0)
      fail(ErrorKind::Range, op_, ": ", an, " and ", bn, " must not be the same memory");
  }

 private:
  const char* op_;
};

}  // namespace mvllm
