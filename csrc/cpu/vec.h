// A float vector of the widest width the build targets, with loads/stores that convert f16/bf16 in registers.
// Kernels are written once against Vec and compile to AVX-512, AVX2+F16C+FMA, NEON (the neon level: Armv8.2-A with
// fp16 and dotprod), or scalar code.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../core/dtype.h"
#include "level.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__F16C__) && defined(__FMA__))
#include <immintrin.h>
#endif
// The neon level: what cpu/base/isa.cc checks the machine for (HWCAP asimddp, fphp, asimdhp).
#if defined(__aarch64__) && defined(__ARM_NEON) && defined(__ARM_FEATURE_DOTPROD) && \
    defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
#define MVLLM_NEON 1
#include <arm_neon.h>
#endif

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

// Scalar conversions, used by tails and by the scalar build.
inline float to_float(float v) { return v; }
inline float to_float(f16 v) { return f16_to_float(v.bits); }
inline float to_float(bf16 v) { return bf16_to_float(v.bits); }
template <typename T>
T from_float(float v);
template <>
inline float from_float<float>(float v) {
  return v;
}
template <>
inline f16 from_float<f16>(float v) {
  return f16{float_to_f16(v)};
}
template <>
inline bf16 from_float<bf16>(float v) {
  return bf16{float_to_bf16(v)};
}
// Round a float to what storage type T can hold (the rounding a store-then-load would do).
template <typename T>
inline float round_to(float v) {
  return to_float(from_float<T>(v));
}

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__F16C__) && defined(__FMA__))
// The 8 lanes' sum as ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), and eight such sums at once in the same order
// (one hadd tree instead of eight reductions), so a dot product has the same bits whether it is reduced alone or with
// seven others: the avx2 level's vsum/vsum8, and the avx512 level's on its two halves added.
inline float hsum256(__m256 a) {
  const __m256 h = _mm256_hadd_ps(a, a), q = _mm256_hadd_ps(h, h);
  return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(q), _mm256_extractf128_ps(q, 1)));
}
inline void hsum256x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6, __m256 a7,
                      float* out) {
  const __m256 h0 = _mm256_hadd_ps(a0, a1), h1 = _mm256_hadd_ps(a2, a3);
  const __m256 h2 = _mm256_hadd_ps(a4, a5), h3 = _mm256_hadd_ps(a6, a7);
  // per 128-bit lane L: q01 = [Σ_L a0, Σ_L a1, Σ_L a2, Σ_L a3], q23 the same of a4..a7
  const __m256 q01 = _mm256_hadd_ps(h0, h1), q23 = _mm256_hadd_ps(h2, h3);
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(q01, q23, 0x20), _mm256_permute2f128_ps(q01, q23, 0x31)));
}
#endif

#if defined(__AVX512F__)
constexpr const char* kSimdName = "avx512";
struct Vec {
  static constexpr int N = 16;
  __m512 v;
};
inline Vec vset1(float x) { return {_mm512_set1_ps(x)}; }
inline Vec vload(const float* p) { return {_mm512_loadu_ps(p)}; }
inline Vec vload(const f16* p) { return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))}; }
inline Vec vload(const bf16* p) {
  __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
}
inline __m256i bf16_pack_exact(__m512 x) {
  __m512i u = _mm512_castps_si512(x);
  __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  __m512i qnan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(r, nan, qnan));
}
// float -> bf16, round to nearest even. AVX512-BF16 does it in one instruction but treats subnormal inputs as
// zero, so a vector holding any subnormal takes the exact integer path instead.
inline __m256i bf16_pack(__m512 x) {
#if defined(__AVX512BF16__)
  __m512 ax = _mm512_abs_ps(x);
  __mmask16 sub = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(1.17549435e-38f), _CMP_LT_OQ) &
                  _mm512_cmp_ps_mask(ax, _mm512_setzero_ps(), _CMP_NEQ_OQ);
  if (__builtin_expect(sub == 0, 1)) return (__m256i)_mm512_cvtneps_pbh(x);
#endif
  return bf16_pack_exact(x);
}
inline void vstore(float* p, Vec a) { _mm512_storeu_ps(p, a.v); }
inline void vstore(f16* p, Vec a) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstore(bf16* p, Vec a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), bf16_pack(a.v)); }
// Non-temporal stores (bypass the cache, no read-for-ownership); the address must be aligned to the vector's bytes.
inline void vstream(float* p, Vec a) { _mm512_stream_ps(p, a.v); }
inline void vstream(f16* p, Vec a) {
  _mm256_stream_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstream(bf16* p, Vec a) { _mm256_stream_si256(reinterpret_cast<__m256i*>(p), bf16_pack(a.v)); }
inline Vec vround_f16(Vec a) {
  return {_mm512_cvtph_ps(_mm512_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))};
}
inline Vec vround_bf16(Vec a) {
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16_pack(a.v)), 16))};
}
// 1/a to ~1 ulp: 14-bit estimate and one Newton step. a must be finite and nonzero.
inline Vec vrcp(Vec a) {
  __m512 r = _mm512_rcp14_ps(a.v);
  return {_mm512_mul_ps(r, _mm512_fnmadd_ps(a.v, r, _mm512_set1_ps(2.0f)))};
}
inline Vec operator+(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
inline Vec operator-(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline Vec operator*(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline Vec operator/(Vec a, Vec b) { return {_mm512_div_ps(a.v, b.v)}; }
inline Vec vfma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline Vec vmin(Vec a, Vec b) { return {_mm512_min_ps(a.v, b.v)}; }
inline Vec vmax(Vec a, Vec b) { return {_mm512_max_ps(a.v, b.v)}; }
inline Vec vround_int(Vec a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// 2^n for integral-valued n in [-126, 127]
inline Vec vexp2_int(Vec n) {
  __m512i i = _mm512_cvtps_epi32(n.v);
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(i, _mm512_set1_epi32(127)), 23))};
}
// The two 256-bit halves added, then hsum256 / hsum256x8.
inline __m256 fold256(Vec a) { return _mm256_add_ps(_mm512_castps512_ps256(a.v), _mm512_extractf32x8_ps(a.v, 1)); }
inline float vsum(Vec a) { return hsum256(fold256(a)); }
inline void vsum8(const Vec* a, float* out) {
  hsum256x8(fold256(a[0]), fold256(a[1]), fold256(a[2]), fold256(a[3]), fold256(a[4]), fold256(a[5]), fold256(a[6]),
            fold256(a[7]), out);
}
// (a, b) hold 2N interleaved pairs x0 y0 x1 y1 ...: split into xs and ys, and back.
inline void vdeinterleave(Vec a, Vec b, Vec& even, Vec& odd) {
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  even = {_mm512_permutex2var_ps(a.v, ie, b.v)};
  odd = {_mm512_permutex2var_ps(a.v, io, b.v)};
}
inline void vinterleave(Vec even, Vec odd, Vec& a, Vec& b) {
  const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ih = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  a = {_mm512_permutex2var_ps(even.v, il, odd.v)};
  b = {_mm512_permutex2var_ps(even.v, ih, odd.v)};
}

#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
constexpr const char* kSimdName = "avx2";
struct Vec {
  static constexpr int N = 8;
  __m256 v;
};
inline Vec vset1(float x) { return {_mm256_set1_ps(x)}; }
inline Vec vload(const float* p) { return {_mm256_loadu_ps(p)}; }
inline Vec vload(const f16* p) { return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))}; }
inline Vec vload(const bf16* p) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(w, 16))};
}
inline __m128i bf16_pack(__m256 x) {
  __m256i u = _mm256_castps_si256(x);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, qnan, nan);
  // pack 8 x u32 (each < 2^16) to 8 x u16
  __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
  return _mm_packus_epi32(lo, hi);
}
inline void vstore(float* p, Vec a) { _mm256_storeu_ps(p, a.v); }
inline void vstore(f16* p, Vec a) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstore(bf16* p, Vec a) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), bf16_pack(a.v)); }
inline void vstream(float* p, Vec a) { _mm256_stream_ps(p, a.v); }
inline void vstream(f16* p, Vec a) {
  _mm_stream_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstream(bf16* p, Vec a) { _mm_stream_si128(reinterpret_cast<__m128i*>(p), bf16_pack(a.v)); }
inline Vec vround_f16(Vec a) {
  return {_mm256_cvtph_ps(_mm256_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))};
}
inline Vec vround_bf16(Vec a) {
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bf16_pack(a.v)), 16))};
}
// 1/a: 12-bit estimate and one Newton step (~2 ulp). a must be finite and nonzero.
inline Vec vrcp(Vec a) {
  __m256 r = _mm256_rcp_ps(a.v);
  return {_mm256_mul_ps(r, _mm256_fnmadd_ps(a.v, r, _mm256_set1_ps(2.0f)))};
}
inline Vec operator+(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
inline Vec operator-(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline Vec operator*(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline Vec operator/(Vec a, Vec b) { return {_mm256_div_ps(a.v, b.v)}; }
inline Vec vfma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline Vec vmin(Vec a, Vec b) { return {_mm256_min_ps(a.v, b.v)}; }
inline Vec vmax(Vec a, Vec b) { return {_mm256_max_ps(a.v, b.v)}; }
inline Vec vround_int(Vec a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline Vec vexp2_int(Vec n) {
  __m256i i = _mm256_cvtps_epi32(n.v);
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(i, _mm256_set1_epi32(127)), 23))};
}
inline float vsum(Vec a) { return hsum256(a.v); }
inline void vsum8(const Vec* a, float* out) {
  hsum256x8(a[0].v, a[1].v, a[2].v, a[3].v, a[4].v, a[5].v, a[6].v, a[7].v, out);
}
inline void vdeinterleave(Vec a, Vec b, Vec& even, Vec& odd) {
  // per 128-bit lane: [a0 a2 b0 b2 | a4 a6 b4 b6], then reorder the 64-bit chunks 0 2 1 3
  even = {_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a.v, b.v, 0x88)), 0xd8))};
  odd = {_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a.v, b.v, 0xdd)), 0xd8))};
}
inline void vinterleave(Vec even, Vec odd, Vec& a, Vec& b) {
  __m256 lo = _mm256_unpacklo_ps(even.v, odd.v), hi = _mm256_unpackhi_ps(even.v, odd.v);
  a = {_mm256_permute2f128_ps(lo, hi, 0x20)};
  b = {_mm256_permute2f128_ps(lo, hi, 0x31)};
}

#elif defined(MVLLM_NEON)
constexpr const char* kSimdName = "neon";
struct Vec {
  static constexpr int N = 4;
  float32x4_t v;
};
inline Vec vset1(float x) { return {vdupq_n_f32(x)}; }
inline Vec vload(const float* p) { return {vld1q_f32(p)}; }
inline Vec vload(const f16* p) { return {vcvt_f32_f16(vld1_f16(reinterpret_cast<const float16_t*>(p)))}; }
inline Vec vload(const bf16* p) {
  return {vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p)), 16))};
}
// float -> bf16, round to nearest even, NaN kept quiet: the integer path of the x86 levels' bf16_pack.
inline uint16x4_t bf16_pack(float32x4_t x) {
  const uint32x4_t u = vreinterpretq_u32_f32(x), hi = vshrq_n_u32(u, 16);
  const uint32x4_t r = vshrq_n_u32(vaddq_u32(u, vaddq_u32(vandq_u32(hi, vdupq_n_u32(1)), vdupq_n_u32(0x7fff))), 16);
  const uint32x4_t nan = vmvnq_u32(vceqq_f32(x, x));
  return vmovn_u32(vbslq_u32(nan, vorrq_u32(hi, vdupq_n_u32(0x40)), r));
}
inline void vstore(float* p, Vec a) { vst1q_f32(p, a.v); }
inline void vstore(f16* p, Vec a) { vst1_f16(reinterpret_cast<float16_t*>(p), vcvt_f16_f32(a.v)); }
inline void vstore(bf16* p, Vec a) { vst1_u16(reinterpret_cast<uint16_t*>(p), bf16_pack(a.v)); }
// No non-temporal vector store worth having here: plain stores.
template <typename T>
inline void vstream(T* p, Vec a) {
  vstore(p, a);
}
inline Vec vround_f16(Vec a) { return {vcvt_f32_f16(vcvt_f16_f32(a.v))}; }
inline Vec vround_bf16(Vec a) { return {vreinterpretq_f32_u32(vshll_n_u16(bf16_pack(a.v), 16))}; }
// 1/a: 8-bit estimate and two Newton steps (~1 ulp). a must be finite and nonzero.
inline Vec vrcp(Vec a) {
  float32x4_t r = vrecpeq_f32(a.v);
  r = vmulq_f32(r, vrecpsq_f32(a.v, r));
  return {vmulq_f32(r, vrecpsq_f32(a.v, r))};
}
inline Vec operator+(Vec a, Vec b) { return {vaddq_f32(a.v, b.v)}; }
inline Vec operator-(Vec a, Vec b) { return {vsubq_f32(a.v, b.v)}; }
inline Vec operator*(Vec a, Vec b) { return {vmulq_f32(a.v, b.v)}; }
inline Vec operator/(Vec a, Vec b) { return {vdivq_f32(a.v, b.v)}; }
inline Vec vfma(Vec a, Vec b, Vec c) { return {vfmaq_f32(c.v, a.v, b.v)}; }
// (NEON's min and max return NaN when either input is NaN: vexp's clamp keeps NaN, as on x86.)
inline Vec vmin(Vec a, Vec b) { return {vminq_f32(a.v, b.v)}; }
inline Vec vmax(Vec a, Vec b) { return {vmaxq_f32(a.v, b.v)}; }
inline Vec vround_int(Vec a) { return {vrndnq_f32(a.v)}; }
inline Vec vexp2_int(Vec n) {
  return {vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n.v), vdupq_n_s32(127)), 23))};
}
// (a0 + a1) + (a2 + a3), the order vsum8 sums in.
inline float vsum(Vec a) { return vaddvq_f32(a.v); }
inline void vsum8(const Vec* a, float* out) {
  for (int h = 0; h < 2; ++h) {
    const Vec* b = a + 4 * h;
    vst1q_f32(out + 4 * h, vpaddq_f32(vpaddq_f32(b[0].v, b[1].v), vpaddq_f32(b[2].v, b[3].v)));
  }
}
inline void vdeinterleave(Vec a, Vec b, Vec& even, Vec& odd) {
  even = {vuzp1q_f32(a.v, b.v)};
  odd = {vuzp2q_f32(a.v, b.v)};
}
inline void vinterleave(Vec even, Vec odd, Vec& a, Vec& b) {
  a = {vzip1q_f32(even.v, odd.v)};
  b = {vzip2q_f32(even.v, odd.v)};
}

#else
constexpr const char* kSimdName = "scalar";
struct Vec {
  static constexpr int N = 1;
  float v;
};
inline Vec vset1(float x) { return {x}; }
template <typename T>
inline Vec vload(const T* p) {
  return {to_float(*p)};
}
template <typename T>
inline void vstore(T* p, Vec a) {
  *p = from_float<T>(a.v);
}
template <typename T>
inline void vstream(T* p, Vec a) {
  vstore(p, a);
}
inline Vec vround_f16(Vec a) { return {round_to<f16>(a.v)}; }
inline Vec vround_bf16(Vec a) { return {round_to<bf16>(a.v)}; }
inline Vec vrcp(Vec a) { return {1.0f / a.v}; }
inline Vec operator+(Vec a, Vec b) { return {a.v + b.v}; }
inline Vec operator-(Vec a, Vec b) { return {a.v - b.v}; }
inline Vec operator*(Vec a, Vec b) { return {a.v * b.v}; }
inline Vec operator/(Vec a, Vec b) { return {a.v / b.v}; }
inline Vec vfma(Vec a, Vec b, Vec c) { return {std::fma(a.v, b.v, c.v)}; }
inline Vec vmin(Vec a, Vec b) { return {a.v < b.v ? a.v : b.v}; }
inline Vec vmax(Vec a, Vec b) { return {a.v > b.v ? a.v : b.v}; }
inline Vec vround_int(Vec a) { return {std::nearbyint(a.v)}; }
inline Vec vexp2_int(Vec n) { return {std::ldexp(1.0f, int(n.v))}; }
inline float vsum(Vec a) { return a.v; }
inline void vsum8(const Vec* a, float* out) {
  for (int i = 0; i < 8; ++i) out[i] = a[i].v;
}
inline void vdeinterleave(Vec a, Vec b, Vec& even, Vec& odd) {
  even = a;
  odd = b;
}
inline void vinterleave(Vec even, Vec odd, Vec& a, Vec& b) {
  a = even;
  b = odd;
}
#endif

// Round each lane to what storage type T can hold, in registers.
template <typename T>
inline Vec vround_to(Vec a) {
  if constexpr (std::is_same_v<T, f16>)
    return vround_f16(a);
  else if constexpr (std::is_same_v<T, bf16>)
    return vround_bf16(a);
  else
    return a;
}

// Whether p can take vstream() of a whole vector of T (aligned to the vector's size in bytes).
template <typename T>
inline bool stream_aligned(const T* p) {
  return Vec::N > 1 && (reinterpret_cast<uintptr_t>(p) % (sizeof(T) * Vec::N)) == 0;
}

// Fence after non-temporal stores so other threads (and the next op) see them.
inline void stream_fence() {
#if defined(__AVX512F__) || defined(__AVX2__)
  _mm_sfence();
#endif
}

// A load of data that streams from DRAM (a pass over a tensor too large for the caches). On AVX-512 an fp32 one is two
// 256-bit loads into the same lanes: a Zen 4 core reads DRAM 5-10% faster through them than through 512-bit loads
// (bench/results/2026-12-07-cpu-round6/zen4-loads.md). Elsewhere, and for 16-bit types (already narrower loads), vload.
inline Vec vload_stream(const float* p) {
#if defined(__AVX512F__)
  return {_mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(p)), _mm256_loadu_ps(p + 8), 1)};
#else
  return vload(p);
#endif
}
template <typename T>
inline Vec vload_stream(const T* p) {
  return vload(p);
}

// exp(x) in fp32: Cephes' range reduction and degree-6 polynomial (~2 ulp). Overflows to +inf, underflows to 0
// (or ~1.2e-38 without AVX-512, which no caller here can tell from 0). NaN stays NaN.
inline Vec vexp(Vec x) {
#if defined(__AVX512F__)
  const Vec hi = vset1(88.8f), lo = vset1(-104.0f);  // beyond these the result is inf / 0 anyway
#else
  const Vec hi = vset1(88.7228f), lo = vset1(-87.3365f);  // keeps 2^n inside the exponent field
#endif
  Vec xc = vmax(lo, vmin(hi, x));  // operand order keeps NaN (min/max return the 2nd on NaN)
  Vec n = vround_int(xc * vset1(1.44269504088896341f));
  // r = x - n*ln2 with ln2 split in two for accuracy
  Vec r = vfma(n, vset1(-0.693359375f), xc);
  r = vfma(n, vset1(2.12194440e-4f), r);
  Vec p = vset1(1.9875691500e-4f);
  p = vfma(p, r, vset1(1.3981999507e-3f));
  p = vfma(p, r, vset1(8.3334519073e-3f));
  p = vfma(p, r, vset1(4.1665795894e-2f));
  p = vfma(p, r, vset1(1.6666665459e-1f));
  p = vfma(p, r, vset1(5.0000001201e-1f));
  p = vfma(p * r, r, r + vset1(1.0f));
#if defined(__AVX512F__)
  return {_mm512_scalef_ps(p.v, n.v)};  // p * 2^n in one step, saturating to inf / 0
#else
  // split the 2^n scale so n = 128 (x near 88.7) does not overflow the exponent field
  Vec half_n = vround_int(n * vset1(0.5f));
  Vec res = p * vexp2_int(half_n) * vexp2_int(n - half_n);
  const Vec inf = vset1(INFINITY);
#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
  return {_mm256_blendv_ps(res.v, inf.v, _mm256_cmp_ps(x.v, hi.v, _CMP_GT_OQ))};
#elif defined(MVLLM_NEON)
  return {vbslq_f32(vcgtq_f32(x.v, hi.v), inf.v, res.v)};
#else
  return {x.v > hi.v ? inf.v : res.v};
#endif
#endif
}

// max(x[0..n)), -inf when n = 0; x holds no NaN (sampled logits are checked for it; attention scores are finite).
inline float max_of(const float* x, int64_t n) {
  constexpr int N = Vec::N;
  Vec mv = vset1(-INFINITY);
  int64_t i = 0;
  for (; i + N <= n; i += N) mv = vmax(mv, vload(x + i));
  alignas(64) float lanes[N];
  vstore(lanes, mv);
  float m = -INFINITY;
  for (int j = 0; j < N; ++j) m = m < lanes[j] ? lanes[j] : m;
  for (; i < n; ++i) m = m < x[i] ? x[i] : m;
  return m;
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
