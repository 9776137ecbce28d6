// This level's table of entry points (cpu/isa.h), read by cpu/base/isa.cc.
#include "isa.h"
#include "kernels.h"
#include "level.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {
#define MVLLM_KERNEL_ENTRY(js_name, name, ...) &name,
constexpr Kernels kTable{kSimdName, MVLLM_FOR_EACH_OP(MVLLM_KERNEL_ENTRY) & copy, &fill, &stream_read, &fma_peak};
#undef MVLLM_KERNEL_ENTRY
}  // namespace

const Kernels* level_table() { return &kTable; }

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
