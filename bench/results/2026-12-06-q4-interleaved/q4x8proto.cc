// Q4_0 GEMV, one token: (a) row by row as quant_dots<1> with the engine's prefetch; (d) 8 rows interleaved, AVX2;
// (e) 8 rows interleaved, AVX-512 VNNI on 256-bit vectors (built with -mavx512vnni -mavx512vl; without, (e) is not run).
// The engine's kernel (csrc/cpu/quant_x8.h) is (d) with the -8 offset taken off in integers instead of in fp32.
#include <immintrin.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
struct QBlock { float d, s0, s1; int8_t q[32]; };
static inline float h2f(const uint8_t* p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }
static inline __m256i nib(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128((const __m128i*)p), m = _mm_set1_epi8(0xF);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}
static inline __m256 mss(__m256i a, __m256i b) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
}
static inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
static void gemv_a(const uint8_t* w, int64_t rows, int64_t nb, const QBlock* x, float* out) {
  const int64_t ldw = nb * 18, ahead = std::max<int64_t>(1, 2048 / ldw);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* p = w + r * ldw;
    if (r + ahead < rows) for (int64_t b = 0; b < ldw; b += 64) __builtin_prefetch(p + ahead * ldw + b, 0, 3);
    __m256 acc = _mm256_setzero_ps(); float off = 0;
    for (int64_t b = 0; b < nb; ++b, p += 18) {
      const float d = h2f(p);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[b].d), mss(nib(p + 2), _mm256_loadu_si256((const __m256i*)x[b].q)), acc);
      off += -8.f * d * (x[b].s0 + x[b].s1);
    }
    out[r] = hsum(acc) + off;
  }
}
// repack: group g of 8 rows, block b at (g * nb + b) * 144: 8 fp16 scales, then 4 x 32 bytes: chunk c holds row r's
// nibble bytes [4c, 4c + 4) in its 32-bit lane r
static void repack(const uint8_t* w, int64_t rows, int64_t nb, uint8_t* dst) {
  for (int64_t g = 0; g < rows / 8; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* o = dst + (g * nb + b) * 144;
      for (int r = 0; r < 8; ++r) {
        const uint8_t* s = w + ((8 * g + r) * nb + b) * 18;
        memcpy(o + 2 * r, s, 2);
        for (int c = 0; c < 4; ++c) memcpy(o + 16 + 32 * c + 4 * r, s + 2 + 4 * c, 4);
      }
    }
}
template <bool VNNI>
static void gemv_x8(const uint8_t* w, int64_t rows, int64_t nb, const QBlock* x, float* out) {
  const __m256i m4 = _mm256_set1_epi8(0xF), ones = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < rows / 8; ++g) {
    const uint8_t* p = w + g * nb * 144;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, p += 144) {
      __builtin_prefetch(p + 1024, 0, 3);
      const int32_t* xq = (const int32_t*)x[b].q;
      __m256i s = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i R = _mm256_loadu_si256((const __m256i*)(p + 16 + 32 * c));
        const __m256i lo = _mm256_and_si256(R, m4), hi = _mm256_and_si256(_mm256_srli_epi16(R, 4), m4);
        const __m256i xl = _mm256_set1_epi32(xq[c]), xh = _mm256_set1_epi32(xq[4 + c]);
        if constexpr (VNNI) {
#if defined(__AVX512VNNI__)
          s = _mm256_dpbusd_epi32(s, lo, xl);
          s = _mm256_dpbusd_epi32(s, hi, xh);
#endif
        } else {
          s = _mm256_add_epi16(s, _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh)));
        }
      }
      if constexpr (!VNNI) s = _mm256_madd_epi16(s, ones);
      const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
      const __m256 t = _mm256_fmsub_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(x[b].d), _mm256_set1_ps(8.f * (x[b].s0 + x[b].s1)));
      acc = _mm256_fmadd_ps(d8, t, acc);
    }
    _mm256_storeu_ps(out + 8 * g, acc);
  }
}
int main(int argc, char** argv) {
  const int64_t N = atoi(argv[1]), K = atoi(argv[2]); const int copies = argc > 3 ? atoi(argv[3]) : 1;
  const int64_t nb = K / 32; const size_t bytes = size_t(N) * nb * 18;
  std::vector<std::vector<uint8_t>> ws(copies, std::vector<uint8_t>(bytes)), wr(copies, std::vector<uint8_t>(bytes));
  srand(1);
  for (auto& w : ws) for (int64_t r = 0; r < N * nb; ++r) { uint8_t* q = w.data() + r * 18; for (int i = 2; i < 18; ++i) q[i] = rand();
    uint16_t h = _cvtss_sh(0.01f + (rand() % 100) * 1e-4f, 0); memcpy(q, &h, 2); }
  for (int c = 0; c < copies; ++c) repack(ws[c].data(), N, nb, wr[c].data());
  std::vector<QBlock> x(nb);
  for (auto& b : x) { float amax = 0; float v[32]; for (int i = 0; i < 32; ++i) { v[i] = (rand() % 1000) / 500.f - 1; amax = std::max(amax, fabsf(v[i])); }
    b.d = amax / 127; int s0 = 0, s1 = 0; for (int i = 0; i < 32; ++i) { b.q[i] = int8_t(nearbyintf(v[i] * 127 / amax)); (i < 16 ? s0 : s1) += b.q[i]; } b.s0 = b.d * s0; b.s1 = b.d * s1; }
  std::vector<float> ra(N), rd(N), re(N);
  gemv_a(ws[0].data(), N, nb, x.data(), ra.data()); gemv_x8<false>(wr[0].data(), N, nb, x.data(), rd.data());
  gemv_x8<true>(wr[0].data(), N, nb, x.data(), re.data());
  double ed = 0, ee = 0; for (int64_t i = 0; i < N; ++i) { ed = std::max(ed, double(fabsf(ra[i] - rd[i]) / (fabsf(ra[i]) + 1e-3))); ee = std::max(ee, double(fabsf(ra[i] - re[i]) / (fabsf(ra[i]) + 1e-3))); }
  auto time = [&](auto f, std::vector<std::vector<uint8_t>>& W) { std::vector<double> t; for (int it = 0; it < 301; ++it) { auto t0 = std::chrono::steady_clock::now(); f(W[it % copies].data(), N, nb, x.data(), ra.data());
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()); } std::sort(t.begin(), t.end()); return t[t.size() / 2]; };
  for (int rep = 0; rep < 3; ++rep) {
#if defined(__AVX512VNNI__)
    const double te = time(gemv_x8<true>, wr);
#else
    const double te = 0;
#endif
    double ta = time(gemv_a, ws), td = time(gemv_x8<false>, wr);
    printf("%ldx%ld copies %d: a %.2f ns/blk (%.1f GB/s) | x8 avx2 %.2f (%.1f) maxrel %.1e", N, K, copies,
      ta * 1e9 / (N * nb), bytes / ta / 1e9, td * 1e9 / (N * nb), bytes / td / 1e9, ed);
    if (te > 0) printf(" | x8 vnni %.2f (%.1f) maxrel %.1e", te * 1e9 / (N * nb), bytes / te / 1e9, ee);
    printf("\n");
  }
}
