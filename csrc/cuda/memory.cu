// Device copies (strided, converting between float dtypes) and fill.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

struct Layout {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t dst_strides[kMaxDims];
  int64_t src_strides[kMaxDims];
};

// grid: enough blocks to cover n (grid-stride), block: 256
template <typename D, typename S>
__global__ void copy_kernel(D* dst, const S* src, Layout l, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i, doff = 0, soff = 0;
    for (int d = l.ndim - 1; d >= 0; --d) {
      int64_t idx = rem % l.shape[d];
      rem /= l.shape[d];
      doff += idx * l.dst_strides[d];
      soff += idx * l.src_strides[d];
    }
    if constexpr (std::is_same_v<D, S>)
      dst[doff] = src[soff];
    else
      dst[doff] = from_f<D>(to_f(src[soff]));
  }
}

// grid: enough blocks to cover n (grid-stride), block: 256
template <typename T>
__global__ void fill_kernel(T* dst, Layout l, int64_t n, T value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i, off = 0;
    for (int d = l.ndim - 1; d >= 0; --d) {
      off += (rem % l.shape[d]) * l.dst_strides[d];
      rem /= l.shape[d];
    }
    dst[off] = value;
  }
}

// grid: enough blocks to cover n (grid-stride), block: 256

Layout layout_of(const TensorView& dst, const TensorView* src) {
  Layout l{};
  l.ndim = dst.ndim;
  for (int d = 0; d < dst.ndim; ++d) {
    l.shape[d] = dst.shape[d];
    l.dst_strides[d] = dst.strides[d];
    l.src_strides[d] = src ? src->strides[d] : 0;
  }
  return l;
}

template <typename D, typename S>
void launch_copy(const TensorView& dst, const TensorView& src, cudaStream_t st) {
  const int64_t n = dst.numel();
  MVLLM_LAUNCH(blocks_for(n, 256), 256, 0, st, copy_kernel<D, S>)(dst.ptr<D>(), src.ptr<S>(), layout_of(dst, &src), n);
}

}  // namespace

void copy(const TensorView& dst, const TensorView& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  cudaStream_t st = stream(dst.device_index);
  if (dst.dtype == src.dtype && dst.is_contiguous() && src.is_contiguous()) {
    check(cudaMemcpyAsync(dst.data, src.data, size_t(n) * dst.itemsize(), cudaMemcpyDeviceToDevice, st),
          "cudaMemcpy(device to device)");
    return;
  }
  if (dst.dtype == DType::Int32 || src.dtype == DType::Int32) {
    if (dst.dtype != src.dtype) fail(ErrorKind::Type, "copy: int32 converts only to int32");
    launch_copy<int32_t, int32_t>(dst, src, st);
  } else {
    MVLLM_CUDA_DISPATCH_FLOAT(dst.dtype, D,
                              { MVLLM_CUDA_DISPATCH_FLOAT(src.dtype, S, (launch_copy<D, S>(dst, src, st))); });
  }
  check_launch("copy");
}

void fill(const TensorView& t, double value) {
  const int64_t n = t.numel();
  if (n == 0) return;
  cudaStream_t st = stream(t.device_index);
  const Layout l = layout_of(t, nullptr);
  if (t.dtype == DType::Int32) {
    MVLLM_LAUNCH(blocks_for(n, 256), 256, 0, st, fill_kernel<int32_t>)(t.ptr<int32_t>(), l, n, int32_t(value));
  } else {
    MVLLM_CUDA_DISPATCH_FLOAT(t.dtype, T, {
      // NOTE: converted on the host so NaN poison and infinities reach the device bit-exact.
      T v = from_f<T>(float(value));
      MVLLM_LAUNCH(blocks_for(n, 256), 256, 0, st, fill_kernel<T>)(t.ptr<T>(), l, n, v);
    });
  }
  check_launch("fill");
}

}  // namespace mvllm::cuda
