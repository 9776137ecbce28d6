// Copies between CPU tensors (and host arrays) with dtype conversion, and fill.
#include <atomic>
#include <cstring>
#include <vector>

#include "../core/error.h"
#include "dispatch.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

template <typename D, typename S>
void convert_span(D* dst, const S* src, int64_t n) {
  if constexpr (std::is_same_v<D, S>) {
    std::memcpy(dst, src, size_t(n) * sizeof(D));
  } else {
    constexpr int N = Vec::N;
    int64_t i = 0;
    for (; i + N <= n; i += N) vstore(dst + i, vload(src + i));
    for (; i < n; ++i) dst[i] = from_float<D>(to_float(src[i]));
  }
}

// Strided element copy of one row (last dim) when it is not dense.
template <typename D, typename S>
void convert_strided(D* dst, int64_t ds, const S* src, int64_t ss, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<D, S>)
      dst[i * ds] = src[i * ss];
    else
      dst[i * ds] = from_float<D>(to_float(src[i * ss]));
  }
}

template <typename D, typename S>
void copy_typed(const TensorView& dst, const TensorView& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  if (dst.is_contiguous() && src.is_contiguous()) {
    parallel_for(n, 1 << 16, [&](int64_t a, int64_t b) { convert_span(dst.ptr<D>() + a, src.ptr<S>() + a, b - a); });
    return;
  }
  // Walk every row (all dims but the last) with an odometer.
  const int nd = dst.ndim;
  const int64_t cols = nd ? dst.size(-1) : 1;
  const int64_t rows = n / cols;
  const int64_t dcs = nd ? dst.stride(-1) : 1, scs = nd ? src.stride(-1) : 1;
  parallel_for(rows, std::max<int64_t>(1, 4096 / cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t doff = 0, soff = 0, rem = r;
      for (int d = nd - 2; d >= 0; --d) {
        int64_t idx = rem % dst.shape[d];
        rem /= dst.shape[d];
        doff += idx * dst.strides[d];
        soff += idx * src.strides[d];
      }
      if (dcs == 1 && scs == 1)
        convert_span(dst.ptr<D>() + doff, src.ptr<S>() + soff, cols);
      else
        convert_strided(dst.ptr<D>() + doff, dcs, src.ptr<S>() + soff, scs, cols);
    }
  });
}

}  // namespace

void copy(const TensorView& dst, const TensorView& src) {
  if (dst.dtype == DType::Int32 || src.dtype == DType::Int32) {
    if (dst.dtype != src.dtype) fail(ErrorKind::Type, "copy: int32 converts only to int32");
    // int32 has the same width as float: copy the bits.
    TensorView d = dst, s = src;
    d.dtype = s.dtype = DType::Float32;
    copy_typed<float, float>(d, s);
    return;
  }
  MVLLM_CPU_DISPATCH_FLOAT(dst.dtype, D, { MVLLM_CPU_DISPATCH_FLOAT(src.dtype, S, (copy_typed<D, S>(dst, src))); });
}

void fill(const TensorView& t, double value) {
  // Fill through copy from a zero-stride source of one element: every layout handled in one place.
  float f = float(value);
  int32_t i = int32_t(value);
  TensorView src = t;
  src.dtype = t.dtype == DType::Int32 ? DType::Int32 : DType::Float32;
  src.data = t.dtype == DType::Int32 ? static_cast<void*>(&i) : static_cast<void*>(&f);
  for (int d = 0; d < src.ndim; ++d) src.strides[d] = 0;
  copy(t, src);
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
