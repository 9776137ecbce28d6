#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include "quant_dots.h"
using namespace mvllm; using namespace mvllm::cpu;
int main(int argc, char** argv) {
  int type = atoi(argv[1]); int rows = atoi(argv[2]); int K = 4096; int R = argc > 3 ? atoi(argv[3]) : 1;
  QuantFormat f{}; quant_format(type, &f);
  int64_t ldw = (K / f.block) * f.bytes;
  std::vector<uint8_t> w(rows * ldw); for (auto& b : w) b = rand() & 0xff;
  for (int64_t r = 0; r < rows; ++r) for (int64_t b = 0; b < K / f.block; ++b) { uint8_t* p = &w[r*ldw + b*f.bytes]; p[0]=rand()&0xff; p[1]=0x3c - (rand()%3); if (f.bytes==20||f.bytes==24){p[2]=0;p[3]=0xb8;} }
  std::vector<float> x(K); for (auto& v : x) v = (rand() % 1000) / 500.0f - 1;
  std::vector<QBlock> qx(K / 32); quantize_x(x.data(), K, qx.data()); std::vector<float> xs(4 * K / 32); quantize_x_sides(qx.data(), K/32, xs.data());
  std::vector<float> out(rows), ref(rows);
  for (int r = 0; r < rows; ++r) quant_dots<1>(type, &w[r * ldw], qx.data(), K/32, xs.data(), 4*K/32, K/32, &ref[r]);
  double best = 1e9; float sink = 0;
  for (int it = 0; it < 50; ++it) {
    auto t0 = std::chrono::steady_clock::now();
    if (0) {}
    else for (int r = 0; r < rows; ++r) quant_dots<1>(type, &w[r * ldw], qx.data(), K/32, xs.data(), 4*K/32, K/32, &out[r]);
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count()); sink += out[0];
  }
  double maxrel = 0; for (int r = 0; r < rows; ++r) maxrel = std::max(maxrel, double(std::fabs(out[r]-ref[r]) / (std::fabs(ref[r]) + 1e-3)));
  double blocks = double(rows) * K / 32;
  printf("type %d R %d: %.3f ns/block32, %.1f GB/s maxrel %.2e\n", type, R, best / blocks * 1e9, rows * ldw / best / 1e9, maxrel);
}
