// The CPU kernels as a table per instruction-set level, and the one in use (see level.h for how the levels are
// built). Included by the baseline code (the binding, cpu/base) and by each level's cpu/table.cc.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "../core/op_checks.h"
#include "../core/tensor.h"

namespace mvllm::cpu {

// One level's entry points: every op of MVLLM_FOR_EACH_OP, and what kernels.h offers the binding.
struct Kernels {
  const char* isa;  // the level's name: scalar, avx2, avx512 (what its vectors are)
#define MVLLM_KERNEL_SLOT(js_name, name, ...) decltype(check_##name)* name;
  MVLLM_FOR_EACH_OP(MVLLM_KERNEL_SLOT)
#undef MVLLM_KERNEL_SLOT
  void (*copy)(const TensorView& dst, const TensorView& src);
  void (*fill)(const TensorView& t, double value);
  double (*stream_read)(const TensorView& t);
  double (*fma_peak)(double seconds);
};

extern std::atomic<const Kernels*> g_active_kernels;

// The level in use: the best this machine runs, or MINI_VLLM_CPU_ISA's (init_isa), or set_isa's.
inline const Kernels& kernels() { return *g_active_kernels.load(std::memory_order_relaxed); }

// The levels this build holds that this machine can run, best first.
const std::vector<const Kernels*>& runnable_levels();
// Every level this build holds, best first, whether or not this machine runs it.
std::vector<const char*> built_levels();
// Makes `isa` the level in use; a RangeError naming `source` and listing the runnable levels if it is not one of them.
void set_isa(const std::string& isa, const char* source);
// At load: MINI_VLLM_CPU_ISA if set, else the best runnable level.
void init_isa();

}  // namespace mvllm::cpu
