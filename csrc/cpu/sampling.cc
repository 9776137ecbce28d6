// Token sampling from logits rows (host float32): greedy, temperature, top-k, top-p, min-p. Runs every step over
// the whole vocabulary, so it avoids sorting it: top-k by selection, top-p by growing a sorted prefix only until it
// holds the mass.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace mvllm::cpu {
namespace {

// One row's settings, read out of SampleRowsParams (core/op_checks.h).
struct RowParams {
  float temperature;
  int32_t top_k;
  float top_p;
  float min_p;
  double uniform;
};

struct Cand {
  float logit;
  int32_t id;
};

// Higher logit first, then the lower id: a total order, so the result never depends on the sort algorithm.
inline bool before(const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

int32_t argmax(const float* l, int64_t vocab) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (l[i] > l[best]) best = i;
  return int32_t(best);
}

int32_t sample_row(const float* l, int64_t vocab, const RowParams& p, std::vector<Cand>& cand) {
  if (p.temperature == 0.f) return argmax(l, vocab);
  const float inv_t = 1.f / p.temperature;
  const float m = l[argmax(l, vocab)];
  // min-p keeps tokens with prob >= minP * maxProb, i.e. logit >= max + T log(minP).
  const float floor_logit = p.min_p > 0.f ? m + p.temperature * std::log(p.min_p) : -INFINITY;
  cand.clear();
  for (int64_t i = 0; i < vocab; ++i)
    if (l[i] >= floor_logit) cand.push_back({l[i], int32_t(i)});
  size_t n = cand.size();
  if (p.top_k > 0 && size_t(p.top_k) < n) {
    std::nth_element(cand.begin(), cand.begin() + p.top_k, cand.end(), before);
    n = size_t(p.top_k);
    cand.resize(n);
  }
  auto weight = [&](const Cand& c) { return std::exp(double((c.logit - m) * inv_t)); };
  if (p.top_p < 1.f) {
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += weight(cand[i]);
    const double target = double(p.top_p) * total;
    // Sort a prefix of growing size until its mass reaches topP of the total.
    size_t sorted = 0;
    double mass = 0;
    size_t keep = n;
    for (size_t want = std::min<size_t>(n, 64);; want = std::min(n, want * 4)) {
      std::partial_sort(cand.begin() + sorted, cand.begin() + want, cand.end(), before);
      for (; sorted < want; ++sorted) {
        mass += weight(cand[sorted]);
        if (mass >= target) break;
      }
      if (sorted < want) {
        keep = sorted + 1;
        break;
      }
      if (want == n) break;
    }
    n = keep;
    cand.resize(n);
  }
  // Walk the kept tokens in id order (the order does not depend on how they were selected).
  std::sort(cand.begin(), cand.end(), [](const Cand& a, const Cand& b) { return a.id < b.id; });
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += weight(cand[i]);
  const double target = p.uniform * total;
  double acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc += weight(cand[i]);
    if (acc > target) return cand[i].id;
  }
  return cand[n - 1].id;
}

}  // namespace

void sample_rows(const HostArray<const float>& logits, double rows_d, double vocab_d, const SampleRowsParams& p,
                 const HostArray<int32_t>& out) {
  const int64_t rows = int64_t(rows_d), vocab = int64_t(vocab_d);
  parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<Cand> cand;
    cand.reserve(size_t(vocab));
    for (int64_t r = r0; r < r1; ++r) {
      const RowParams row{p.temperature.data[r], p.top_k.data[r], p.top_p.data[r], p.min_p.data[r], p.uniform.data[r]};
      out.data[r] = sample_row(logits.data + r * vocab, vocab, row, cand);
    }
  });
}

}  // namespace mvllm::cpu
