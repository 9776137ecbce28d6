// The machine's limits the benchmarks compare against, measured by the same threads the kernels use: a STREAM-like
// read (memory bandwidth) and independent FMA chains (fp32 compute peak).
#include <atomic>
#include <chrono>
#include <vector>

#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {

double stream_read(const TensorView& t) {
  const float* p = t.ptr<float>();
  const int64_t n = t.numel();
  std::vector<double> partial(size_t(num_threads()) * 8, 0.0);
  std::atomic<int> slot{0};
  parallel_for(n, 1 << 16, [&](int64_t a, int64_t b) {
    constexpr int N = Vec::N;
    Vec s0 = vset1(0.f), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = a;
    for (; i + 4 * N <= b; i += 4 * N) {
      s0 = s0 + vload(p + i);
      s1 = s1 + vload(p + i + N);
      s2 = s2 + vload(p + i + 2 * N);
      s3 = s3 + vload(p + i + 3 * N);
    }
    double s = vsum((s0 + s1) + (s2 + s3));
    for (; i < b; ++i) s += p[i];
    partial[size_t(slot.fetch_add(1)) % partial.size()] += s;
  });
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

double fma_peak(double seconds) {
  // Per thread: 12 independent accumulator chains, enough to cover FMA latency on two pipes.
  const int threads = num_threads();
  std::vector<double> flops(size_t(threads), 0.0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  auto t0 = std::chrono::steady_clock::now();
  parallel_for(threads, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      Vec acc[12];
      for (int i = 0; i < 12; ++i) acc[i] = vset1(float(i) * 1e-3f);
      const Vec a = vset1(0.999999f), b = vset1(1e-7f);
      double done = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        for (int rep = 0; rep < 4096; ++rep)
          for (int i = 0; i < 12; ++i) acc[i] = vfma(acc[i], a, b);
        done += 4096.0 * 12 * 2 * Vec::N;
      }
      Vec s = acc[0];
      for (int i = 1; i < 12; ++i) s = s + acc[i];
      volatile float keep = vsum(s);  // the result is used, so the FMAs cannot be optimised away
      (void)keep;
      flops[size_t(w)] = done;
    }
  });
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0;
  for (double f : flops) total += f;
  return total / elapsed / 1e9;
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
