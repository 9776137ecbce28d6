// The CPU kernels (every .cc of csrc/cpu, and the headers they share) are compiled once per instruction-set level:
// on x86-64 the baseline (scalar vectors), x86-64-v3 (AVX2, FMA, F16C) and x86-64-v4 (AVX-512 F/BW/DQ/VL). Each
// compilation lives in an inline namespace of its own, mvllm::cpu::<MVLLM_CPU_LEVEL>, so the levels' copies of a
// kernel and of every inline helper have different symbols and the linker cannot mix them. cpu/base/isa.cc picks one
// level at load (cpu/isa.h); the rest of the addon is compiled once, for the baseline, and reaches the kernels only
// through that level's table.
#pragma once

#ifndef MVLLM_CPU_LEVEL
#error "csrc/cpu is compiled once per level: the build defines MVLLM_CPU_LEVEL (CMakeLists.txt, binding.gyp)"
#endif

// A level above the baseline is also given MVLLM_CPU_LEVEL_BELOW, the namespace of the level compiled below it (on
// x86-64: avx2 for avx512, or the baseline where that is x86-64-v3 itself). Where a level has no kernel of its own for
// some work, its entry point calls the level below's for that work (quant.cc: avx512's integer dot products are
// avx2's), so the level runs the machine code the level below runs, never the same source recompiled with other
// flags and measured slower.
