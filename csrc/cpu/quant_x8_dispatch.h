// Which interleaved GEMV runs (quant_x8.h's x8_dots_impl): the plain AVX2 form, or on an AVX-512 VNNI CPU under the
// avx512 level the form compiled for it, chosen at run time; for 1 to 4 tokens.
#pragma once

#include <cstdlib>
#include <string_view>

#include "quant_x8.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

template <int M>
inline void x8_dots(int type, const uint8_t* g, const QBlock* x, int64_t ldx, int64_t blocks32, float* out) {
  x8_dots_impl<M>(type, g, x, ldx, blocks32, out);
}

#if defined(__AVX512F__)
// The AVX-512 level's GEMV on a CPU with AVX-512 VNNI (Ice Lake server on, Zen 4 on; not Skylake-X): compiled for it
// here, chosen at run time (x8_vnni()).
template <int M>
__attribute__((target("avx512vnni,avx512vl"))) void x8_dots_vnni(int type, const uint8_t* g, const QBlock* x,
                                                                 int64_t ldx, int64_t blocks32, float* out) {
  x8_dots_impl<M, true>(type, g, x, ldx, blocks32, out);
}
#endif

// Whether this level's GEMV takes the VNNI path: AVX-512 VNNI on the CPU, unless MINI_VLLM_CPU_VNNI=0 (an A/B
// switch, and how the tests reach the other path on a VNNI machine).
inline bool x8_vnni() {
#if defined(__AVX512F__)
  static const bool on = [] {
    const char* e = std::getenv("MINI_VLLM_CPU_VNNI");
    return __builtin_cpu_supports("avx512vnni") && !(e && std::string_view(e) == "0");
  }();
  return on;
#else
  return false;
#endif
}

// x8_dots for 1 to 4 tokens (mt), on the VNNI path where asked.
inline void x8_dots_n(int64_t mt, bool vnni, int type, const uint8_t* g, const QBlock* x, int64_t ldx, int64_t blocks32,
                      float* out) {
#if defined(__AVX512F__)
  if (vnni) {
    switch (mt) {
      case 1: return x8_dots_vnni<1>(type, g, x, ldx, blocks32, out);
      case 2: return x8_dots_vnni<2>(type, g, x, ldx, blocks32, out);
      case 3: return x8_dots_vnni<3>(type, g, x, ldx, blocks32, out);
      default: return x8_dots_vnni<4>(type, g, x, ldx, blocks32, out);
    }
  }
#else
  (void)vnni;
#endif
  switch (mt) {
    case 1: return x8_dots<1>(type, g, x, ldx, blocks32, out);
    case 2: return x8_dots<2>(type, g, x, ldx, blocks32, out);
    case 3: return x8_dots<3>(type, g, x, ldx, blocks32, out);
    default: return x8_dots<4>(type, g, x, ldx, blocks32, out);
  }
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
