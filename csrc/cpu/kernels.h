// What the CPU backend offers besides the ops' entry points (those are declared once for both backends, from each
// op's check, in core/op_checks.h): copies, fills, the benchmarks' limits, and helpers two op families share.
#pragma once

#include "../core/op_checks.h"
#include "../core/tensor.h"
#include "level.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

// out[i] = table[indices[i]]: embedding and gatherRows. Throws RangeError (naming `op` and `index_name`) on an index
// outside the table, before anything is written.
void copy_rows(const char* op, const TensorView& out, const TensorView& indices, const char* index_name,
               const TensorView& table);

// Elementwise copy between CPU tensors of one shape, any strides, converting between float dtypes
// (int32 only to int32). Host arrays take part by being wrapped in a TensorView.
void copy(const TensorView& dst, const TensorView& src);
void fill(const TensorView& t, double value);

// Sums every element (float32 only): the STREAM-like read that benchmarks compare against.
double stream_read(const TensorView& t);
// Runs independent FMAs on every thread for about `seconds`; returns GFLOP/s (the benchmarks' compute peak).
double fma_peak(double seconds);

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
