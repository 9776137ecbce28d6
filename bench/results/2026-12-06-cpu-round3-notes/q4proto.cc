// Q4_0 GEMV, one token, variants: (a) row by row as quant_dots<1> (unsigned nibbles, offset chain);
// (b) 4 rows at once sharing x's block; (c) 4 rows, nibbles - 8 as signed bytes with the sign trick (no offset term).
#include <immintrin.h>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
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
// (a)
static void gemv_a(const uint8_t* w, int64_t rows, int64_t nb, const QBlock* x, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* p = w + r * nb * 18;
    __m256 acc = _mm256_setzero_ps(); float off = 0;
    for (int64_t b = 0; b < nb; ++b, p += 18) {
      const float d = h2f(p);
      const __m256i q = nib(p + 2);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[b].d), mss(q, _mm256_loadu_si256((const __m256i*)x[b].q)), acc);
      off += -8.f * d * (x[b].s0 + x[b].s1);
    }
    out[r] = hsum(acc) + off;
  }
}
// (b) 4 rows, unsigned nibbles, offsets as a vector: off4 += d4 * xs (one fma per block for 4 rows)
static void gemv_b(const uint8_t* w, int64_t rows, int64_t nb, const QBlock* x, float* out) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const uint8_t* p0 = w + r * nb * 18; const int64_t ld = nb * 18;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    __m128 off = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = p0 + b * 18;
      const __m256i xq = _mm256_loadu_si256((const __m256i*)x[b].q);
      const __m128 d4 = _mm_setr_ps(h2f(p), h2f(p + ld), h2f(p + 2 * ld), h2f(p + 3 * ld));
      const __m128 dd = _mm_mul_ps(d4, _mm_set1_ps(x[b].d));
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_mm_cvtss_f32(dd)), mss(nib(p + 2), xq), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_mm_cvtss_f32(_mm_shuffle_ps(dd, dd, 1))), mss(nib(p + ld + 2), xq), acc1);
      acc2 = _mm256_fmadd_ps(_mm256_set1_ps(_mm_cvtss_f32(_mm_shuffle_ps(dd, dd, 2))), mss(nib(p + 2 * ld + 2), xq), acc2);
      acc3 = _mm256_fmadd_ps(_mm256_set1_ps(_mm_cvtss_f32(_mm_shuffle_ps(dd, dd, 3))), mss(nib(p + 3 * ld + 2), xq), acc3);
      off = _mm_fmadd_ps(d4, _mm_set1_ps(-8.f * (x[b].s0 + x[b].s1)), off);
    }
    float o[4]; _mm_storeu_ps(o, off);
    out[r] = hsum(acc0) + o[0]; out[r + 1] = hsum(acc1) + o[1]; out[r + 2] = hsum(acc2) + o[2]; out[r + 3] = hsum(acc3) + o[3];
  }
  gemv_a(w + r * nb * 18, rows - r, nb, x, out + r);
}
// (c) 4 rows, signed (nibble - 8) with the sign trick
static void gemv_c(const uint8_t* w, int64_t rows, int64_t nb, const QBlock* x, float* out) {
  int64_t r = 0; const __m256i eight = _mm256_set1_epi8(8);
  for (; r + 4 <= rows; r += 4) {
    const uint8_t* p0 = w + r * nb * 18; const int64_t ld = nb * 18;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = p0 + b * 18;
      const __m256i xq = _mm256_loadu_si256((const __m256i*)x[b].q);
      const __m128 dd = _mm_mul_ps(_mm_setr_ps(h2f(p), h2f(p + ld), h2f(p + 2 * ld), h2f(p + 3 * ld)), _mm_set1_ps(x[b].d));
      float dv[4]; _mm_storeu_ps(dv, dd);
      for (int i = 0; i < 4; ++i) {
        const __m256i q = _mm256_sub_epi8(nib(p + i * ld + 2), eight);
        acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(dv[i]), mss(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q)), acc[i]);
      }
    }
    for (int i = 0; i < 4; ++i) out[r + i] = hsum(acc[i]);
  }
  gemv_a(w + r * nb * 18, rows - r, nb, x, out + r);
}
int main(int argc, char** argv) {
  const int64_t N = atoi(argv[1]), K = atoi(argv[2]); const int copies = argc > 3 ? atoi(argv[3]) : 1;
  const int64_t nb = K / 32; const size_t bytes = size_t(N) * nb * 18;
  std::vector<std::vector<uint8_t>> ws(copies, std::vector<uint8_t>(bytes));
  srand(1);
  for (auto& w : ws) for (int64_t r = 0; r < N * nb; ++r) { uint8_t* q = w.data() + r * 18; for (int i = 2; i < 18; ++i) q[i] = rand();
    uint16_t h = _cvtss_sh(0.01f + (rand() % 100) * 1e-4f, 0); memcpy(q, &h, 2); }
  std::vector<QBlock> x(nb);
  for (auto& b : x) { float amax = 0; float v[32]; for (int i = 0; i < 32; ++i) { v[i] = (rand() % 1000) / 500.f - 1; amax = std::max(amax, fabsf(v[i])); }
    b.d = amax / 127; int s0 = 0, s1 = 0; for (int i = 0; i < 32; ++i) { b.q[i] = int8_t(nearbyintf(v[i] * 127 / amax)); (i < 16 ? s0 : s1) += b.q[i]; } b.s0 = b.d * s0; b.s1 = b.d * s1; }
  std::vector<float> ra(N), rb(N), rc(N);
  gemv_a(ws[0].data(), N, nb, x.data(), ra.data()); gemv_b(ws[0].data(), N, nb, x.data(), rb.data()); gemv_c(ws[0].data(), N, nb, x.data(), rc.data());
  double eb = 0, ec = 0; for (int64_t i = 0; i < N; ++i) { eb = std::max(eb, double(fabsf(ra[i] - rb[i]) / (fabsf(ra[i]) + 1e-3))); ec = std::max(ec, double(fabsf(ra[i] - rc[i]) / (fabsf(ra[i]) + 1e-3))); }
  auto time = [&](auto f) { std::vector<double> t; for (int it = 0; it < 301; ++it) { auto t0 = std::chrono::steady_clock::now(); f(ws[it % copies].data(), N, nb, x.data(), ra.data());
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()); } std::sort(t.begin(), t.end()); return t[t.size() / 2]; };
  for (int rep = 0; rep < 3; ++rep) {
    double ta = time(gemv_a), tb = time(gemv_b), tc = time(gemv_c);
    printf("%ldx%ld copies %d: a %.2f ns/blk (%.1f GB/s) | b 4 rows %.2f (%.1f) | c 4 rows signed %.2f (%.1f)  maxrel b %.1e c %.1e\n", N, K, copies,
      ta * 1e9 / (N * nb), bytes / ta / 1e9, tb * 1e9 / (N * nb), bytes / tb / 1e9, tc * 1e9 / (N * nb), bytes / tc / 1e9, eb, ec);
  }
}
