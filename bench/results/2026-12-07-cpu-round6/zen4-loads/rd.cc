#include <immintrin.h>
#include <thread>
#include <vector>
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
const size_t N = 64ull << 20;  // floats: 256 MB
template <int W> float sum(const float* x, size_t n) {
  if (W == 8) { __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0; for (size_t i = 0; i < n; i += 32) { a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i)); a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8)); a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16)); a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24)); } __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)); float t[8]; _mm256_storeu_ps(t, a); return t[0]; }
  __m512 a0 = _mm512_setzero_ps(), a1 = a0; for (size_t i = 0; i < n; i += 32) { a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i)); a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16)); } return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}
template <int W> double run(const float* x, int threads) {
  auto t0 = std::chrono::steady_clock::now(); volatile float s1 = 0;
  if (threads == 2) { std::thread th([&] { s1 = sum<W>(x + N / 2, N / 2); }); volatile float s0 = sum<W>(x, N / 2); th.join(); }
  else { volatile float s0 = sum<W>(x, N); }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
int main() {
  float* x = (float*)aligned_alloc(64, N * 4); for (size_t i = 0; i < N; ++i) x[i] = 1.f;
  for (int th = 1; th <= 2; ++th) { std::vector<double> a, b; for (int it = 0; it < 15; ++it) { a.push_back(run<8>(x, th)); b.push_back(run<16>(x, th)); }
    std::sort(a.begin(), a.end()); std::sort(b.begin(), b.end());
    printf("threads %d: ymm loads %.1f GB/s, zmm loads %.1f GB/s\n", th, N * 4 / a[7] / 1e9, N * 4 / b[7] / 1e9); }
}
