// Token sampling from logits rows (host float32): greedy, temperature, top-k, top-p, min-p. Runs every step over
// the whole vocabulary, so it never sorts it: with no filter, one pass for the weights and a draw; with filters,
// buckets of the weights find which tokens are kept, and only a boundary bucket (or top-k's few) is ordered.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/op_checks.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
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

// The first index of the largest logit: the maxima of spans of 256 first (vectorised), then the first span holding
// the largest, element by element.
int32_t argmax(const float* l, int64_t vocab) {
  constexpr int64_t kSpan = 256;
  float best = -INFINITY;
  int64_t span = 0;
  for (int64_t i = 0; i < vocab; i += kSpan) {
    const float m = max_of(l + i, std::min(kSpan, vocab - i));
    if (m > best) best = m, span = i;
  }
  int64_t i = span;
  while (i + 1 < vocab && l[i] != best) ++i;
  return int32_t(i);
}

// w[i] = e^((l[i] - m) / T) for the whole row, vectorised (~2 ulp).
void weights(const float* l, int64_t vocab, float m, float inv_t, float* w) {
  constexpr int N = Vec::N;
  const Vec vm = vset1(m), vinv = vset1(inv_t);
  int64_t i = 0;
  for (; i + N <= vocab; i += N) vstore(w + i, vexp((vload(l + i) - vm) * vinv));
  for (; i < vocab; ++i) w[i] = std::exp((l[i] - m) * inv_t);
}

// Σ w[i0, i1), vectorised, returned as a double.
double sum(const float* w, int64_t i0, int64_t i1) {
  constexpr int N = Vec::N;
  Vec acc = vset1(0.f);
  int64_t i = i0;
  for (; i + N <= i1; i += N) acc = acc + vload(w + i);
  double s = vsum(acc);
  for (; i < i1; ++i) s += w[i];
  return s;
}

// The token a uniform draw picks among those `keep(i)` accepts, walking them in id order.
template <typename Keep>
int32_t draw(const float* w, int64_t vocab, double uniform, const Keep& keep) {
  double total = 0;
  int64_t last = vocab - 1;
  for (int64_t i = 0; i < vocab; ++i)
    if (keep(i)) total += w[i], last = i;
  const double target = uniform * total;
  double acc = 0;
  for (int64_t i = 0; i < vocab; ++i)
    if (keep(i) && (acc += w[i]) > target) return int32_t(i);
  return int32_t(last);
}

// Scratch a row reuses: the weights, block sums, and the filters' buckets.
struct RowScratch {
  std::vector<float> w;
  std::vector<double> block_sum;
  std::vector<uint16_t> bucket;
  std::vector<Cand> cand;
};

// No filter set: the draw over all the vocabulary without candidates or sorting. The weights' double sums per block
// of kBlock let the draw find its block first, then its token inside it.
int32_t sample_unfiltered(const float* l, int64_t vocab, float temperature, double uniform, RowScratch& s) {
  constexpr int64_t kBlock = 256;
  const float m = max_of(l, vocab);
  if (m == -INFINITY) return int32_t(vocab - 1);  // every weight is NaN, as in the reference: the last id
  const int64_t blocks = (vocab + kBlock - 1) / kBlock;
  s.w.resize(size_t(vocab));
  s.block_sum.resize(size_t(blocks));
  weights(l, vocab, m, 1.f / temperature, s.w.data());
  double total = 0;
  for (int64_t b = 0; b < blocks; ++b)
    total += s.block_sum[size_t(b)] = sum(s.w.data(), b * kBlock, std::min(vocab, (b + 1) * kBlock));
  const double target = uniform * total;
  double acc = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    if (acc + s.block_sum[size_t(b)] <= target) {
      acc += s.block_sum[size_t(b)];
      continue;
    }
    for (int64_t i = b * kBlock, i1 = std::min(vocab, i + kBlock); i < i1; ++i)
      if ((acc += s.w[size_t(i)]) > target) return int32_t(i);
  }
  return int32_t(vocab - 1);
}

// The filters without sorting the vocabulary: each token goes into a bucket of its scaled gap (max - logit) / T,
// kBucketsPerUnit buckets per unit, so a bucket bounds its tokens' weights e^-gap and holds their count and mass.
// What top-k or top-p keeps is then the first buckets whole and an ordered prefix of one boundary bucket: only that
// bucket (top-p) or the buckets up to it (top-k, then nth_element) are ever ordered.
constexpr int kBuckets = 512;
constexpr float kBucketsPerUnit = 16.f;

int32_t sample_filtered(const float* l, int64_t vocab, const RowParams& p, RowScratch& s) {
  const float m = max_of(l, vocab);
  if (m == -INFINITY)  // every weight is NaN, as in the reference: the last id that top-k keeps
    return int32_t((p.top_k > 0 ? std::min<int64_t>(p.top_k, vocab) : vocab) - 1);
  const float inv_t = 1.f / p.temperature;
  // min-p keeps tokens with prob >= minP * maxProb, i.e. logit >= max + T log(minP).
  const float floor_logit = p.min_p > 0.f ? m + p.temperature * std::log(p.min_p) : -INFINITY;
  s.w.resize(size_t(vocab));
  s.bucket.resize(size_t(vocab));
  float* w = s.w.data();
  uint16_t* bk = s.bucket.data();
  weights(l, vocab, m, inv_t, w);
  int64_t count[kBuckets] = {};
  double mass[kBuckets] = {};
  int64_t n = 0;  // tokens min-p keeps
  for (int64_t i = 0; i < vocab; ++i) {
    if (l[i] < floor_logit) {
      bk[i] = kBuckets;  // dropped by min-p
      continue;
    }
    const float g = (m - l[i]) * inv_t * kBucketsPerUnit;
    const int b = g < float(kBuckets - 1) ? int(g) : kBuckets - 1;  // a -inf logit's gap is inf: the last bucket
    bk[i] = uint16_t(b);
    ++count[b];
    mass[b] += w[i];
    ++n;
  }
  std::vector<Cand>& cand = s.cand;
  auto weight = [&](const Cand& c) { return double(w[c.id]); };
  if (p.top_k > 0 && p.top_k < n) {
    // the k largest lie in the buckets up to the one where the count reaches k
    int last = 0;
    for (int64_t c = count[0]; c < p.top_k; c += count[++last]) {
    }
    cand.clear();
    for (int64_t i = 0; i < vocab; ++i)
      if (bk[i] <= last) cand.push_back({l[i], int32_t(i)});
    std::nth_element(cand.begin(), cand.begin() + p.top_k, cand.end(), before);
    cand.resize(size_t(p.top_k));
    if (p.top_p < 1.f) {
      // k is small: order the k and keep the prefix whose mass reaches topP of theirs
      std::sort(cand.begin(), cand.end(), before);
      double total = 0;
      for (const Cand& c : cand) total += weight(c);
      const double target = double(p.top_p) * total;
      double acc = 0;
      size_t keep = 0;
      while (keep < cand.size() && (acc += weight(cand[keep++])) < target) {
      }
      cand.resize(keep);
    }
    // the few kept, walked in id order
    std::sort(cand.begin(), cand.end(), [](const Cand& a, const Cand& b) { return a.id < b.id; });
    double total = 0;
    for (const Cand& c : cand) total += weight(c);
    const double target = p.uniform * total;
    double acc = 0;
    for (const Cand& c : cand)
      if ((acc += weight(c)) > target) return c.id;
    return cand.back().id;
  }
  // top-p alone: the buckets whole while their mass stays under the target, then the boundary bucket in order
  int cut = kBuckets;  // tokens in buckets < cut are kept, and in bucket `cut` those up to `boundary`
  Cand boundary{0.f, -1};
  if (p.top_p < 1.f) {
    double total = 0;
    for (int b = 0; b < kBuckets; ++b) total += mass[b];
    const double target = double(p.top_p) * total;
    double acc = 0;
    for (int b = 0; b < kBuckets && cut == kBuckets; ++b) {
      if (acc + mass[b] < target) {
        acc += mass[b];
        continue;
      }
      cand.clear();
      for (int64_t i = 0; i < vocab; ++i)
        if (bk[i] == b) cand.push_back({l[i], int32_t(i)});
      std::sort(cand.begin(), cand.end(), before);
      for (const Cand& c : cand)
        if ((acc += weight(c)) >= target) {
          cut = b;
          boundary = c;
          break;
        }
      // (rounding left the bucket short of the target: all of it is kept, and the next one is the boundary)
    }
  }
  return draw(w, vocab, p.uniform, [&](int64_t i) {
    return bk[i] < cut || (bk[i] == cut && boundary.id >= 0 && !before(boundary, Cand{l[i], int32_t(i)}));
  });
}

int32_t sample_row(const float* l, int64_t vocab, const RowParams& p, RowScratch& s) {
  if (p.temperature == 0.f) return argmax(l, vocab);
  if ((p.top_k == 0 || p.top_k >= vocab) && p.top_p >= 1.f && p.min_p <= 0.f)
    return sample_unfiltered(l, vocab, p.temperature, p.uniform, s);
  return sample_filtered(l, vocab, p, s);
}

}  // namespace

void sample_rows(const HostArray<const float>& logits, double rows_d, double vocab_d, const SampleRowsParams& p,
                 const HostArray<int32_t>& out) {
  const int64_t rows = int64_t(rows_d), vocab = int64_t(vocab_d);
  parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
    RowScratch scratch;
    for (int64_t r = r0; r < r1; ++r) {
      const RowParams row{p.temperature.data[r], p.top_k.data[r], p.top_p.data[r], p.min_p.data[r], p.uniform.data[r]};
      out.data[r] = sample_row(logits.data + r * vocab, vocab, row, scratch);
    }
  });
}

// Structured output's mask: logits[rows[i], t] = -inf wherever bit t of bitmask row i is 0. Whole words of 1s (most
// of a JSON mask is all-allowed or all-refused) cost one compare.
void apply_token_bitmask(const TensorView& logits, const TensorView& bitmask, const TensorView& rows) {
  const int64_t n = rows.size(0), num_rows = logits.size(0), vocab = logits.size(1), words = bitmask.size(1);
  const int32_t* idx = rows.ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= num_rows)
      fail(ErrorKind::Range, "applyTokenBitmask: rows[", i, "] = ", idx[i], " is outside [0, ", num_rows, ")");
  const size_t item = logits.itemsize();
  // -inf in the logits' dtype: float32, or the top 16 bits of it for bfloat16, or float16's own
  const uint16_t neg_inf16 = logits.dtype == DType::Float16 ? 0xFC00 : 0xFF80;
  parallel_for(n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const uint32_t* mask = reinterpret_cast<const uint32_t*>(bitmask.ptr<int32_t>()) + i * words;
      char* row = static_cast<char*>(logits.data) + idx[i] * logits.stride(0) * int64_t(item);
      for (int64_t w = 0; w < words; ++w) {
        const uint32_t m = mask[w];
        if (m == 0xFFFFFFFFu) continue;
        const int64_t end = std::min<int64_t>(32, vocab - w * 32);
        for (int64_t b = 0; b < end; ++b) {
          if (m >> b & 1u) continue;
          const int64_t t = w * 32 + b;
          if (item == 4)
            reinterpret_cast<float*>(row)[t] = -INFINITY;
          else
            reinterpret_cast<uint16_t*>(row)[t] = neg_inf16;
        }
      }
    }
  });
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
