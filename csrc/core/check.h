// Argument checks that throw: every op validates its tensors here before any backend touches memory.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <utility>

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

  // An embedding's ids and output: ids int32 [numTokens], dense; out [numTokens, hidden], one row per id, each row
  // dense (rows may be strided). The op checks out's dtype and width against its table.
  void ids_out(const TensorView& ids, const TensorView& out) const {
    dtype(ids, "ids", DType::Int32);
    ndim(ids, "ids", 1, "[numTokens]");
    contiguous(ids, "ids");
    ndim(out, "out", 2, "[numTokens, hidden]");
    dim(out, "out", 0, ids.size(0), "one row per id");
    rows_dense(out, "out");
  }

  // A linear layer's optional bias (data == null: none): [outFeatures] of out's dtype, dense, on x's device.
  // A linear layer's activations, whatever its weight: x [numTokens, inFeatures] and out [numTokens, outFeatures]
  // (rows may be strided), x a float dtype, out x's dtype and device. The op checks its weight, then out's width.
  void linear_x_out(const TensorView& out, const TensorView& x) const {
    float_dtype(x, "x");
    same_dtype(out, "out", x, "x");
    same_device(out, "out", x, "x");
    ndim(x, "x", 2, "[numTokens, inFeatures]");
    ndim(out, "out", 2, "[numTokens, outFeatures]");
    dim(out, "out", 0, x.size(0), "numTokens of x");
    rows_dense(x, "x");
    rows_dense(out, "out");
  }

  void linear_bias(const MaybeTensor& bias, const TensorView& out, const TensorView& x, int64_t out_features) const {
    if (!bias.data) return;
    same_dtype(bias, "bias", out, "out");
    same_device(bias, "bias", x, "x");
    ndim(bias, "bias", 1, "[outFeatures]");
    dim(bias, "bias", 0, out_features, "outFeatures of weight");
    contiguous(bias, "bias");
  }

  void positive_finite(double v, const char* name) const {
    if (!std::isfinite(v) || v <= 0) fail(ErrorKind::Range, op_, ": ", name, " must be a finite number > 0, got ", v);
  }

  // For arguments a kernel reads while it writes the other: they must not share a byte.
  void distinct(const TensorView& a, const char* an, const TensorView& b, const char* bn) const {
    if (overlaps(a, b)) fail(ErrorKind::Range, op_, ": ", an, " and ", bn, " must not overlap in memory");
  }

  // For ops that may run in place: the very same view, or no shared byte.
  void same_or_distinct(const TensorView& a, const char* an, const TensorView& b, const char* bn) const {
    if (overlaps(a, b) && !same_view(a, b))
      fail(ErrorKind::Range, op_, ": ", an, " and ", bn, " must be the same view (in place) or not overlap in memory");
  }

  // Whether two views share a byte. Exact for views whose rows are dense and share a row stride (rows or column
  // slices of one buffer); otherwise whether the address ranges they span intersect.
  static bool overlaps(const TensorView& a, const TensorView& b) {
    if (a.numel() == 0 || b.numel() == 0 || a.device != b.device || a.device_index != b.device_index) return false;
    const auto [a0, a1] = span(a);
    const auto [b0, b1] = span(b);
    if (a1 <= b0 || b1 <= a0) return false;
    const int64_t ra = row_bytes(a), rb = row_bytes(b);
    if (ra < 0 || rb < 0 || a.ndim < 2 || b.ndim < 2) return true;
    const int64_t stride = a.strides[0] * int64_t(a.itemsize());
    if (stride != b.strides[0] * int64_t(b.itemsize()) || stride <= 0 || ra > stride || rb > stride) return true;
    // Rows repeat every `stride` bytes: compare where each view's row sits within that period.
    const int64_t d = ((b0 - a0) % stride + stride) % stride;
    return d < ra || d + rb > stride;
  }

 private:
  static bool same_view(const TensorView& a, const TensorView& b) {
    if (a.data != b.data || a.dtype != b.dtype || a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; ++i)
      if (a.shape[i] != b.shape[i] || (a.shape[i] > 1 && a.strides[i] != b.strides[i])) return false;
    return true;
  }
  // [first byte, one past the last byte] a view can touch (strides are not negative).
  static std::pair<int64_t, int64_t> span(const TensorView& t) {
    int64_t last = 0;
    for (int i = 0; i < t.ndim; ++i) last += (t.shape[i] - 1) * t.strides[i];
    const auto base = int64_t(reinterpret_cast<uintptr_t>(t.data));
    return {base, base + (last + 1) * int64_t(t.itemsize())};
  }
  // Bytes of one row (the dims after the first, if they are dense), or -1.
  static int64_t row_bytes(const TensorView& t) {
    int64_t expect = 1;
    for (int i = t.ndim - 1; i >= 1; --i) {
      if (t.shape[i] != 1 && t.strides[i] != expect) return -1;
      expect *= t.shape[i];
    }
    return expect * int64_t(t.itemsize());
  }

 public:
 private:
  const char* op_;
};

}  // namespace mvllm
