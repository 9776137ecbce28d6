#include <immintrin.h>
#include <thread>
#include <vector>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
const int R = 8192, H = 4096;
float sum8(const float* x) { __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  for (int i = 0; i < H; i += 16) { __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8); a0 = _mm256_fmadd_ps(v0, v0, a0); a1 = _mm256_fmadd_ps(v1, v1, a1); }
  __m256 a = _mm256_add_ps(a0, a1); float t[8]; _mm256_storeu_ps(t, a); float s = 0; for (int j = 0; j < 8; ++j) s += t[j]; return s; }
float sum16(const float* x) { __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  for (int i = 0; i < H; i += 32) { __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16); a0 = _mm512_fmadd_ps(v0, v0, a0); a1 = _mm512_fmadd_ps(v1, v1, a1); }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)); }
float sum16x4(const float* x) { __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int i = 0; i < H; i += 64) { __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16), v2 = _mm512_loadu_ps(x + i + 32), v3 = _mm512_loadu_ps(x + i + 48); a0 = _mm512_fmadd_ps(v0, v0, a0); a1 = _mm512_fmadd_ps(v1, v1, a1); a2 = _mm512_fmadd_ps(v2, v2, a2); a3 = _mm512_fmadd_ps(v3, v3, a3);}
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))); }
static inline __m512 ld2(const float* p) { return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(p)), _mm256_loadu_ps(p + 8), 1); }
float sum16h(const float* x) { __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  for (int i = 0; i < H; i += 32) { __m512 v0 = ld2(x + i), v1 = ld2(x + i + 16); a0 = _mm512_fmadd_ps(v0, v0, a0); a1 = _mm512_fmadd_ps(v1, v1, a1); }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)); }
float sum16pf(const float* x) { __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  for (int i = 0; i < H; i += 32) { _mm_prefetch((const char*)(x + i + 512), _MM_HINT_T0); _mm_prefetch((const char*)(x + i + 528), _MM_HINT_T0); __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16); a0 = _mm512_fmadd_ps(v0, v0, a0); a1 = _mm512_fmadd_ps(v1, v1, a1); }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)); }
void scale8(float* o, const float* x, const float* w, float inv) { __m256 v = _mm256_set1_ps(inv); for (int i = 0; i < H; i += 8) _mm256_stream_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), v), _mm256_loadu_ps(w + i))); }
void scale16(float* o, const float* x, const float* w, float inv) { __m512 v = _mm512_set1_ps(inv); for (int i = 0; i < H; i += 16) _mm512_stream_ps(o + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), v), _mm512_loadu_ps(w + i))); }
template <typename S, typename C> double run(float* o, const float* x, const float* w, S sum, C scale) {
  auto body = [&](int r0, int r1) { for (int r = r0; r < r1; ++r) { const float* xr = x + (size_t)r * H; float inv = 1.f / std::sqrt(sum(xr) / H + 1e-5f); scale(o + (size_t)r * H, xr, w, inv); } };
  auto t0 = std::chrono::steady_clock::now();
  std::thread th([&] { body(R / 2, R); }); body(0, R / 2); th.join(); _mm_sfence();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
int main() {
  float* x = (float*)aligned_alloc(64, (size_t)R * H * 4); float* o = (float*)aligned_alloc(64, (size_t)R * H * 4); float* w = (float*)aligned_alloc(64, H * 4);
  for (size_t i = 0; i < (size_t)R * H; ++i) x[i] = 0.5f, o[i] = 0; for (int i = 0; i < H; ++i) w[i] = 1.1f;
  std::vector<double> t[6];
  for (int it = 0; it < 30; ++it) { t[0].push_back(run(o, x, w, sum8, scale8)); t[1].push_back(run(o, x, w, sum16, scale16)); t[2].push_back(run(o, x, w, sum8, scale16)); t[3].push_back(run(o, x, w, sum16, scale8)); t[4].push_back(run(o, x, w, sum16h, scale16)); t[5].push_back(run(o, x, w, sum16pf, scale16)); }
  auto med = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; };
  printf("s8c8 %.2f  s16c16 %.2f  s8c16 %.2f  s16c8 %.2f  s16halves-c16 %.2f  s16pf2KB-c16 %.2f ms\n", med(t[0]), med(t[1]), med(t[2]), med(t[3]), med(t[4]), med(t[5]));
}
