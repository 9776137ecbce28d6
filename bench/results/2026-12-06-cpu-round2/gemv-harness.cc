// The quantised GEMV through a level's table (cpu::kernels().quant_linear), one token, weights from DRAM: copies of the
// weight fill 256 MB and each call reads the next copy. Median of the calls. Built against a check build's objects:
//   cmake -S . -B /tmp/chk -DMINI_VLLM_CPU_CHECK=ON && cmake --build /tmp/chk
//   g++ -O2 -std=c++17 -DMVLLM_CPU_HAS_AVX2 -DMVLLM_CPU_HAS_AVX512 -Icsrc gemv-harness.cc csrc/cpu/base/*.cc \
//     /tmp/chk/CMakeFiles/mvllm_cpu_{base,avx2,avx512}.dir/csrc/cpu/*.o -o gemv-harness -lpthread
//   ./gemv-harness TYPE ROWS COLS THREADS [LEVEL [CALLS]]      (env: COPIES=n, HUGE=1 for one madvised arena)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
#include <sys/mman.h>
#include "core/quant.h"
#include "core/tensor.h"
#include "core/dtype.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"
using namespace mvllm;
int main(int argc, char** argv) {
  int type = atoi(argv[1]); int N = atoi(argv[2]), K = atoi(argv[3]); int threads = atoi(argv[4]);
  const char* isa = argc > 5 ? argv[5] : "avx512";
  cpu::set_num_threads(threads); cpu::init_isa(); cpu::set_isa(isa, "arg");
  QuantFormat f{}; quant_format(type, &f);
  int64_t words = quant_row_words(f, K);
  size_t bytes = size_t(N) * words * 4;
  int copies = getenv("COPIES") ? atoi(getenv("COPIES")) : std::max<int>(1, int(256e6 / bytes));
  const bool huge = getenv("HUGE") != nullptr;
  struct Buf { int32_t* p; int32_t* data() { return p; } };
  std::vector<Buf> ws(copies);
  size_t each = (bytes + 63) / 64 * 64;
  void* arena = nullptr;
  if (huge) { posix_memalign(&arena, 2 << 20, each * copies); madvise(arena, each * copies, MADV_HUGEPAGE); }
  for (int c = 0; c < copies; ++c) ws[c].p = huge ? (int32_t*)((char*)arena + c * each) : (int32_t*)aligned_alloc(64, each);
  srand(1);
  for (auto& w : ws) { uint8_t* p = (uint8_t*)w.data();
    for (int64_t r = 0; r < N; ++r) for (int64_t b = 0; b < K / f.block; ++b) { uint8_t* q = p + r * words * 4 + b * f.bytes;
      for (int i = 0; i < f.bytes; ++i) q[i] = rand(); uint16_t h = float_to_f16(0.01f + (rand() % 100) * 1e-4f);
      int off = type == kQ6_K ? 208 : 0; memcpy(q + off, &h, 2); if (type == kQ4_K || type == kQ5_K) memcpy(q + 2, &h, 2);
      if (type == kQ4_1 || type == kQ5_1) memcpy(q + 2, &h, 2); } }
  std::vector<float> x(K), out(N);
  for (int i = 0; i < K; ++i) x[i] = (rand() % 1000) / 500.f - 1;
  auto view = [](void* d, DType dt, std::initializer_list<int64_t> s) { TensorView v; v.data = d; v.dtype = dt; v.ndim = int(s.size()); int i = 0; for (auto x : s) v.shape[i++] = x; int64_t st = 1; for (int j = v.ndim - 1; j >= 0; --j) { v.strides[j] = st; st *= v.shape[j]; } return v; };
  TensorView xv = view(x.data(), DType::Float32, {1, K}), ov = view(out.data(), DType::Float32, {1, N});
  MaybeTensor nob;
  std::vector<double> ts;
  const int iters = argc > 6 ? atoi(argv[6]) : 200;
  for (int it = 0; it < iters; ++it) {
    TensorView wv = view(ws[it % copies].data(), DType::Int32, {N, words});
    auto t0 = std::chrono::steady_clock::now();
    cpu::kernels().quant_linear(ov, xv, wv, type, nob);
    ts.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ts.begin(), ts.end());
  double med = ts[ts.size() / 2];
  printf("%s type %d %dx%d threads %d: %.1f us, %.2f ns/block32/thread, %.1f GB/s\n", isa, type, N, K, threads, med * 1e6, med * 1e9 * threads / (double(N) * K / 32), bytes / med / 1e9);
}
