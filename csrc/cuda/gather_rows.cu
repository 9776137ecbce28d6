// Row gathers: out[i] = table[indices[i]], one block per output row. gatherRows picks each sequence's last token
// before the logits; the token embedding (embedding.cu) is the same copy.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

// grid: n, block: 128 threads over the row's bytes in 16-byte words (or single elements)
template <typename W>
__global__ void gather_rows_kernel(W* __restrict__ out, int64_t out_stride,            // [n, hidden] in units of W
                                   const W* __restrict__ table, int64_t table_stride,  // [rows, hidden]
                                   const int32_t* __restrict__ indices, int64_t rows, int64_t width, unsigned* flags) {
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

}  // namespace

void copy_rows(const TensorView& out, const TensorView& indices, const TensorView& table, const char* op) {
  const int64_t n = indices.size(0), hidden = table.size(1);
  const size_t item = table.itemsize();
  cudaStream_t st = stream(table.device_index);
  unsigned* flags = assert_flags(table.device_index);
  const bool vec = (hidden * int64_t(item)) % 16 == 0 && (out.stride(0) * int64_t(item)) % 16 == 0 &&
                   (table.stride(0) * int64_t(item)) % 16 == 0 && aligned16(out.data) && aligned16(table.data);
  if (vec) {
    const int64_t per = 16 / int64_t(item);
    MVLLM_LAUNCH(unsigned(n), 128, 0, st, gather_rows_kernel<uint4>)(
        static_cast<uint4*>(out.data), out.stride(0) / per, static_cast<const uint4*>(table.data),
        table.stride(0) / per, indices.ptr<int32_t>(), table.size(0), hidden / per, flags);
  } else if (item == 4) {
    MVLLM_LAUNCH(unsigned(n), 128, 0, st, gather_rows_kernel<uint32_t>)(
        static_cast<uint32_t*>(out.data), out.stride(0), static_cast<const uint32_t*>(table.data), table.stride(0),
        indices.ptr<int32_t>(), table.size(0), hidden, flags);
  } else {
    MVLLM_LAUNCH(unsigned(n), 128, 0, st, gather_rows_kernel<uint16_t>)(
        static_cast<uint16_t*>(out.data), out.stride(0), static_cast<const uint16_t*>(table.data), table.stride(0),
        indices.ptr<int32_t>(), table.size(0), hidden, flags);
  }
  check_launch(op);
}

void gather_rows(const TensorView& out, const TensorView& x, const TensorView& indices) {
  copy_rows(out, indices, x, "gatherRows");
}

}  // namespace mvllm::cuda
