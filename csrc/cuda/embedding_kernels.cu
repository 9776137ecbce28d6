// Row gathers (embedding, last-token gather) and the elementwise add: one block per output row.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

// grid: n, block: 128 threads over the row's bytes in 16-byte words (or single elements)
template <typename W>
__global__ void gather_rows_kernel(W* __restrict__ out, int64_t out_stride,          // [n, hidden] in units of W
                                   const W* __restrict__ table, int64_t table_stride,  // [rows, hidden]
                                   const int32_t* __restrict__ indices, int64_t rows, int64_t width,
                                   unsigned* flags) {
  const int64_t i = blockIdx.x;
  const int64_t idx = indices[i];
  W* o = out + i * out_stride;
  if (idx < 0 || idx >= rows) {
    if (threadIdx.x == 0) atomicOr(flags, unsigned(kIndexOutOfRange));
    for (int64_t j = threadIdx.x; j < width; j += blockDim.x) o[j] = W{};
    return;
  }
  const W* src = table + idx * table_stride;
  for (int64_t j = threadIdx.x; j < width; j += blockDim.x) o[j] = src[j];
}

// grid: numTokens, block: 256 threads over the row in packs of V
template <typename T, int V>
__global__ void add_kernel(T* out, int64_t out_stride, const T* a, int64_t a_stride, const T* b, int64_t b_stride,
                           int d) {
  using P = Pack<T, V>;
  const P* ar = reinterpret_cast<const P*>(a + blockIdx.x * a_stride);
  const P* br = reinterpret_cast<const P*>(b + blockIdx.x * b_stride);
  P* o = reinterpret_cast<P*>(out + blockIdx.x * out_stride);
  for (int i = threadIdx.x; i < d / V; i += blockDim.x) {
    P x = ar[i], y = br[i], r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = from_f<T>(to_f(x.v[j]) + to_f(y.v[j]));
    o[i] = r;
  }
}

}  // namespace

void gather_rows(const TensorView& out, const TensorView& indices, const TensorView& table) {
  const int64_t n = indices.size(0), hidden = table.size(1);
  const size_t item = table.itemsize();
  cudaStream_t st = stream(table.device_index);
  unsigned* flags = assert_flags(table.device_index);
  const bool vec = (hidden * int64_t(item)) % 16 == 0 && (out.stride(0) * int64_t(item)) % 16 == 0 &&
                   (table.stride(0) * int64_t(item)) % 16 == 0 && aligned16(out.data) && aligned16(table.data);
  if (vec) {
    const int64_t per = 16 / int64_t(item);
    gather_rows_kernel<uint4><<<unsigned(n), 128, 0, st>>>(
        static_cast<uint4*>(out.data), out.stride(0) / per, static_cast<const uint4*>(table.data),
        table.stride(0) / per, indices.ptr<int32_t>(), table.size(0), hidden / per, flags);
  } else if (item == 4) {
    gather_rows_kernel<uint32_t><<<unsigned(n), 128, 0, st>>>(
        static_cast<uint32_t*>(out.data), out.stride(0), static_cast<const uint32_t*>(table.data), table.stride(0),
        indices.ptr<int32_t>(), table.size(0), hidden, flags);
  } else {
    gather_rows_kernel<uint16_t><<<unsigned(n), 128, 0, st>>>(
        static_cast<uint16_t*>(out.data), out.stride(0), static_cast<const uint16_t*>(table.data), table.stride(0),
        indices.ptr<int32_t>(), table.size(0), hidden, flags);
  }
  check_launch("gatherRows");
}

void add(const TensorView& out, const TensorView& a, const TensorView& b) {
  const int64_t tokens = a.size(0), d = a.size(1);
  cudaStream_t st = stream(a.device_index);
  MVLLM_CUDA_DISPATCH_FLOAT(a.dtype, T, {
    constexpr int V = 16 / int(sizeof(T));
    const bool vec = d % V == 0 && a.stride(0) % V == 0 && b.stride(0) % V == 0 && out.stride(0) % V == 0 &&
                     aligned16(a.data) && aligned16(b.data) && aligned16(out.data);
    if (vec)
      add_kernel<T, V><<<unsigned(tokens), 256, 0, st>>>(out.ptr<T>(), out.stride(0), a.ptr<T>(), a.stride(0),
                                                         b.ptr<T>(), b.stride(0), int(d));
    else
      add_kernel<T, 1><<<unsigned(tokens), 256, 0, st>>>(out.ptr<T>(), out.stride(0), a.ptr<T>(), a.stride(0),
                                                         b.ptr<T>(), b.stride(0), int(d));
  });
  check_launch("add");
}

}  // namespace mvllm::cuda
