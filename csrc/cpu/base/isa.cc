// Picks the CPU kernels' level at load (cpu/isa.h, cpu/level.h): the best level this build holds that this machine
// runs, or the one MINI_VLLM_CPU_ISA names. Compiled for the baseline, like everything outside the levels.
#include "../isa.h"

#include <cstdlib>
#include <string>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include "../../core/error.h"

namespace mvllm::cpu {

// Each level's table, declared in its own namespace (cpu/table.cc defines them), lowest level first.
inline namespace lvl_base {
const Kernels* level_table();
}
#ifdef MVLLM_CPU_HAS_AVX2
inline namespace lvl_avx2 {
const Kernels* level_table();
}
#endif
#ifdef MVLLM_CPU_HAS_AVX512
inline namespace lvl_avx512 {
const Kernels* level_table();
}
#endif
#ifdef MVLLM_CPU_HAS_NEON
inline namespace lvl_neon {
const Kernels* level_table();
}
#endif

std::atomic<const Kernels*> g_active_kernels{nullptr};

namespace {

struct Level {
  const Kernels* table;
  bool runnable;
};

// What the machine can run. The x86-64 levels are the psABI's microarchitecture levels, which is what the compiler
// was told each level may use (-march=x86-64-v3 also emits BMI2, LZCNT and MOVBE); libgcc checks that the OS saves
// the vector registers too.
#ifdef MVLLM_CPU_HAS_AVX2
bool runs_x86_64_v3() { return __builtin_cpu_supports("x86-64-v3"); }
#endif
#ifdef MVLLM_CPU_HAS_AVX512
bool runs_x86_64_v4() { return __builtin_cpu_supports("x86-64-v4"); }
#endif
// The neon level is compiled -march=armv8.2-a+fp16+dotprod: it needs half-precision arithmetic (FEAT_FP16, scalar and
// vector) and the int8 dot product (FEAT_DotProd).
#if defined(MVLLM_CPU_HAS_NEON) && defined(__linux__)
bool runs_neon() {
  // the bits of <asm/hwcap.h>, spelled out so that an older libc's headers do not matter
  constexpr unsigned long kFphp = 1ul << 9, kAsimdhp = 1ul << 10, kAsimddp = 1ul << 20;
  const unsigned long hw = getauxval(AT_HWCAP);
  return (hw & kFphp) && (hw & kAsimdhp) && (hw & kAsimddp);
}
#elif defined(MVLLM_CPU_HAS_NEON) && defined(__APPLE__)
bool runs_neon() {
  auto has = [](const char* name) {
    int v = 0;
    size_t size = sizeof(v);
    return sysctlbyname(name, &v, &size, nullptr, 0) == 0 && v != 0;
  };
  return has("hw.optional.arm.FEAT_FP16") && has("hw.optional.arm.FEAT_DotProd");
}
#elif defined(MVLLM_CPU_HAS_NEON)
bool runs_neon() { return false; }  // no way known to ask this OS: the baseline only
#endif

// Lowest first.
std::vector<Level> all_levels() {
  std::vector<Level> levels{{cpu::lvl_base::level_table(), true}};
#ifdef MVLLM_CPU_HAS_AVX2
  levels.push_back({cpu::lvl_avx2::level_table(), runs_x86_64_v3()});
#endif
#ifdef MVLLM_CPU_HAS_AVX512
  levels.push_back({cpu::lvl_avx512::level_table(), runs_x86_64_v4()});
#endif
#ifdef MVLLM_CPU_HAS_NEON
  levels.push_back({cpu::lvl_neon::level_table(), runs_neon()});
#endif
  return levels;
}

std::string names(const std::vector<const Kernels*>& levels) {
  std::string out;
  for (const Kernels* k : levels) out += std::string(out.empty() ? "" : ", ") + k->isa;
  return out;
}

}  // namespace

const std::vector<const Kernels*>& runnable_levels() {
  static const std::vector<const Kernels*> levels = [] {
    std::vector<const Kernels*> out;
    for (const Level& l : all_levels())
      if (l.runnable) out.insert(out.begin(), l.table);
    return out;
  }();
  return levels;
}

std::vector<const char*> built_levels() {
  std::vector<const char*> out;
  for (const Level& l : all_levels()) out.insert(out.begin(), l.table->isa);
  return out;
}

void set_isa(const std::string& isa, const char* source) {
  for (const Kernels* k : runnable_levels())
    if (isa == k->isa) return g_active_kernels.store(k);
  std::string built;
  for (const char* b : built_levels()) built += std::string(built.empty() ? "" : ", ") + b;
  fail(ErrorKind::Range, source, " = '", isa, "' is not a CPU level this build holds and this machine runs: expected ",
       "one of ", names(runnable_levels()), " (this build holds ", built, ")");
}

void init_isa() {
  const char* forced = std::getenv("MINI_VLLM_CPU_ISA");
  if (forced && *forced)
    set_isa(forced, "MINI_VLLM_CPU_ISA");
  else
    g_active_kernels.store(runnable_levels().front());
}

}  // namespace mvllm::cpu
