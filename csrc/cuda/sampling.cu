// Structured output's mask on the device: logits[rows[i], t] = -inf wherever bit t of bitmask row i is 0, before the
// logits leave for the sampler. One thread per 32-token word; a word of 1s (most of a mask) is one load.
#include "api.h"
#include "common.cuh"

namespace mvllm::cuda {
namespace {

// grid: (n, ceil(words / 128)), block: 128 threads, one bitmask word each
template <typename T>
__global__ void apply_token_bitmask_kernel(T* __restrict__ logits, int64_t stride,  // [numRows, vocab]
                                           const uint32_t* __restrict__ bitmask,    // [n, words]
                                           const int32_t* __restrict__ rows, int64_t num_rows, int64_t vocab,
                                           int64_t words, T neg_inf, unsigned* flags) {
  const int64_t i = blockIdx.x;
  const int64_t w = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  const int64_t row = rows[i];
  if (row < 0 || row >= num_rows) {
    if (w == 0) atomicOr(flags, unsigned(kMaskRowOutOfRange));
    return;
  }
  if (w >= words) return;
  const uint32_t m = bitmask[i * words + w];
  if (m == 0xFFFFFFFFu) return;
  T* out = logits + row * stride + w * 32;
  const int64_t end = min(int64_t(32), vocab - w * 32);
  for (int64_t b = 0; b < end; ++b)
    if (!(m >> b & 1u)) out[b] = neg_inf;
}

}  // namespace

void apply_token_bitmask(const TensorView& logits, const TensorView& bitmask, const TensorView& rows) {
  const int64_t n = rows.size(0), words = bitmask.size(1);
  if (n == 0) return;
  cudaStream_t st = stream(logits.device_index);
  unsigned* flags = assert_flags(logits.device_index);
  const dim3 grid(unsigned(n), unsigned((words + 127) / 128));
  const auto* mask = reinterpret_cast<const uint32_t*>(bitmask.ptr<int32_t>());
  const int64_t num_rows = logits.size(0), vocab = logits.size(1), stride = logits.stride(0);
  if (logits.dtype == DType::Float32)
    MVLLM_LAUNCH(grid, 128, 0, st, apply_token_bitmask_kernel<float>)(
        static_cast<float*>(logits.data), stride, mask, rows.ptr<int32_t>(), num_rows, vocab, words, -INFINITY, flags);
  else  // float16 and bfloat16 -inf as bits: the kernel only stores them
    MVLLM_LAUNCH(grid, 128, 0, st, apply_token_bitmask_kernel<uint16_t>)(
        static_cast<uint16_t*>(logits.data), stride, mask, rows.ptr<int32_t>(), num_rows, vocab, words,
        uint16_t(logits.dtype == DType::Float16 ? 0xFC00 : 0xFF80), flags);
  check_launch("applyTokenBitmask");
}

}  // namespace mvllm::cuda
