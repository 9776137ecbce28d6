// Paged attention on the CPU: causal softmax(q·kᵀ·scale)·v over K/V gathered through each sequence's block
// table, with an online (streaming) softmax in fp32. One task per (sequence, KV head, chunk of query tokens);
// the query heads that share a KV head (GQA) are done together, so each K/V tile is converted once and used by
// every row of the chunk (tokens x the group's heads, ~64 rows).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "dispatch.h"
#include "dots.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Query tokens [q0, q1) of sequence `seq` (0 = its first query token), the query heads of KV head `kvh`, over the
// keys in [k_begin, k_end) (a split of a long context; partials are merged after).
struct Task {
  int32_t seq, kvh, q0, q1, k_begin, k_end, part, parts;
  int64_t partial_offset;  // where this task's (max, sum, acc) rows go when parts > 1
};

// acc_r = acc_r * corr_r + Σ_{t < nk} p_r[t] · v_t for R rows over V vectors of headSize (p rows pld apart,
// v rows vld apart, acc rows ald apart): R x V independent chains, each v vector loaded once for all R rows.
template <int R, int V, typename TV>
inline void pv_tile(float* acc, int64_t ald, const float* p, int64_t pld, const float* corr, const TV* v, int64_t vld,
                    int64_t nk) {
  constexpr int N = Vec::N;
  Vec a[R][V];
  for (int r = 0; r < R; ++r)
    for (int x = 0; x < V; ++x) a[r][x] = vload(acc + r * ald + x * N) * vset1(corr[r]);
  for (int64_t t = 0; t < nk; ++t) {
    Vec vv[V];
    for (int x = 0; x < V; ++x) vv[x] = vload(v + t * vld + x * N);
    for (int r = 0; r < R; ++r) {
      const Vec pr = vset1(p[r * pld + t]);
      for (int x = 0; x < V; ++x) a[r][x] = vfma(pr, vv[x], a[r][x]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int x = 0; x < V; ++x) vstore(acc + r * ald + x * N, a[r][x]);
}

// p[t] = e^(p[t] - shift) for t < n, vectorised; returns their sum.
inline float exp_shift_sum(float* p, int64_t n, float shift) {
  constexpr int N = Vec::N;
  const Vec vs = vset1(shift);
  Vec acc = vset1(0.f);
  int64_t t = 0;
  for (; t + N <= n; t += N) {
    const Vec e = vexp(vload(p + t) - vs);
    vstore(p + t, e);
    acc = acc + e;
  }
  float sum = vsum(acc);
  for (; t < n; ++t) {
    p[t] = std::exp(p[t] - shift);
    sum += p[t];
  }
  return sum;
}

template <typename T>
inline void load_row(float* dst, const T* src, int64_t n) {
  constexpr int N = Vec::N;
  int64_t i = 0;
  for (; i + N <= n; i += N) vstore(dst + i, vload(src + i));
  for (; i < n; ++i) dst[i] = to_float(src[i]);
}

// Per-thread scratch, reused across calls.
struct Scratch {
  std::vector<float> q, acc, m, l, k, v, p;
};
thread_local Scratch tl_scratch;

// numHeads / numKvHeads at most this (checked in paged_attention_impl).
constexpr int64_t kMaxGroupRows = 256;

struct Shape {
  int64_t block_size, kv_heads, heads, group, d;
  float scale;
};

// The rows of one KV block's bs keys, a slot apart, prefetched (the next block's, while this one is used: short runs
// a slot apart in another block, which the hardware prefetchers do not foresee).
template <typename T>
inline void prefetch_rows(const T* rows, int64_t n, int64_t slot, int64_t d) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t b = 0; b < d * int64_t(sizeof(T)); b += 64)
      __builtin_prefetch(reinterpret_cast<const char*>(rows + t * slot) + b, 0, 3);
}

// acc[r] = acc[r] * corr[r] + Σ_{t < nk} p[r][t] · v_t for the group's rows (corr null: 1; p rows pld apart, v rows
// vld apart, any storage type), in register tiles of 2 rows x 4 vectors; meanwhile the next_n rows at `next` (vld
// apart) are prefetched, a few between each two tiles.
template <typename TV>
void pv_rows(float* acc, const float* p, int64_t pld, const float* corr, const TV* v, int64_t vld, int64_t nk,
             int64_t group, int64_t d, const TV* next, int64_t next_n) {
  constexpr int N = Vec::N;
  const float one[2] = {1.f, 1.f};
  int64_t fetched = 0;
  auto fetch = [&](int64_t rows) {
    for (; rows > 0 && fetched < next_n; --rows, ++fetched) prefetch_rows(next + fetched * vld, 1, vld, d);
  };
  const int64_t tiles = ((group + 1) / 2) * std::max<int64_t>(1, d / (4 * N));
  const int64_t per_tile = (next_n + tiles - 1) / tiles;
  for (int64_t g = 0; g < group; g += 2) {
    const bool two = g + 1 < group;
    float* a = acc + g * d;
    const float* pg = p + g * pld;
    const float* cg = corr ? corr + g : one;
    int64_t c = 0;
    for (; c + 4 * N <= d; c += 4 * N) {
      fetch(per_tile);
      if (two)
        pv_tile<2, 4>(a + c, d, pg, pld, cg, v + c, vld, nk);
      else
        pv_tile<1, 4>(a + c, d, pg, pld, cg, v + c, vld, nk);
    }
    for (; c + N <= d; c += N) {
      if (two)
        pv_tile<2, 1>(a + c, d, pg, pld, cg, v + c, vld, nk);
      else
        pv_tile<1, 1>(a + c, d, pg, pld, cg, v + c, vld, nk);
    }
    for (int64_t rr = 0; rr < (two ? 2 : 1); ++rr)
      for (int64_t i = c; i < d; ++i) {
        float x = a[rr * d + i] * cg[rr];
        for (int64_t t = 0; t < nk; ++t) x += pg[rr * pld + t] * to_float(v[t * vld + i]);
        a[rr * d + i] = x;
      }
  }
  fetch(next_n);
}

// p[r][t] = q_r · k_t for the group's rows (q rows d apart, fp32) and nk keys (ldk apart, any storage type), 4 rows
// x 2 keys at a time; p rows pld apart. Meanwhile the next_n key rows at `next` (ldk apart) are prefetched.
template <typename TK>
void group_scores(float* p, int64_t pld, const float* q, const TK* k, int64_t ldk, int64_t nk, int64_t group, int64_t d,
                  const TK* next, int64_t next_n) {
  for (int64_t g = 0; g < group; g += 4) {
    const int64_t rn = std::min<int64_t>(4, group - g);
    const float* qg = q + g * d;
    float tmp[8];
    for (int64_t t = 0; t < nk; t += 2) {
      const bool pair = t + 1 < nk;
      const TK* kt = k + t * ldk;
      if (g == 0 && t < next_n) prefetch_rows(next + t * ldk, std::min<int64_t>(2, next_n - t), ldk, d);
      switch (rn * 2 + (pair ? 1 : 0)) {
        case 9: dots<4, 2>(qg, d, kt, ldk, d, tmp); break;
        case 8: dots<4, 1>(qg, d, kt, ldk, d, tmp); break;
        case 7: dots<3, 2>(qg, d, kt, ldk, d, tmp); break;
        case 6: dots<3, 1>(qg, d, kt, ldk, d, tmp); break;
        case 5: dots<2, 2>(qg, d, kt, ldk, d, tmp); break;
        case 4: dots<2, 1>(qg, d, kt, ldk, d, tmp); break;
        case 3: dots<1, 2>(qg, d, kt, ldk, d, tmp); break;
        default: dots<1, 1>(qg, d, kt, ldk, d, tmp); break;
      }
      const int kn = pair ? 2 : 1;
      for (int64_t i = 0; i < rn; ++i)
        for (int j = 0; j < kn; ++j) p[(g + i) * pld + t + j] = tmp[i * kn + j];
    }
  }
}

// One query token (a decode step) over keys [k_begin, key_end): the group's scores for every key straight from the
// cache (no fp32 copy), one softmax, then Σ p·v, into s.m, s.l and s.acc (rows = the group, q already in s.q).
template <typename T>
void decode_rows(Scratch& s, const T* kc, const T* vc, const int32_t* tables, int64_t k_begin, int64_t key_end,
                 int64_t kvh, const Shape& sh) {
  const int64_t group = sh.group, d = sh.d, bs = sh.block_size, slot = sh.kv_heads * d, n = key_end - k_begin;
  if (n <= 0) return;  // a part with no keys: m = -inf, l = 0
  s.p.resize(size_t(group * n));
  float* p = s.p.data();
  auto block_rows = [&](const T* cache, int64_t k0) { return cache + int64_t(tables[k0 / bs]) * bs * slot + kvh * d; };
  // scores (k_begin is a block start)
  for (int64_t k0 = k_begin; k0 < key_end; k0 += bs) {
    const int64_t next_n = k0 + bs < key_end ? std::min(bs, key_end - k0 - bs) : 0;
    group_scores(p + (k0 - k_begin), n, s.q.data(), block_rows(kc, k0), slot, std::min(bs, key_end - k0), group, d,
                 next_n ? block_rows(kc, k0 + bs) : kc, next_n);
  }
  // softmax per row, then acc = Σ p·v block by block
  for (int64_t r = 0; r < group; ++r) {
    const float mx = max_of(p + r * n, n);
    s.m[size_t(r)] = mx;
    s.l[size_t(r)] = exp_shift_sum(p + r * n, n, mx);
  }
  for (int64_t k0 = k_begin; k0 < key_end; k0 += bs) {
    const int64_t nk = std::min(bs, key_end - k0);
    const int64_t next_n = k0 + bs < key_end ? std::min(bs, key_end - k0 - bs) : 0;
    pv_rows(s.acc.data(), p + (k0 - k_begin), n, nullptr, block_rows(vc, k0), slot, nk, group, d,
            next_n ? block_rows(vc, k0 + bs) : vc, next_n);
  }
}

// One task: rows r = (token j, group head g) -> r = j * group + g, query head kvh * group + g. Each cache block of the
// range has this KV head's K and V rows converted to fp32 once and used by every row.
template <typename T>
void attention_task(const Task& task, const TensorView& out, const TensorView& query, const T* kc, const T* vc,
                    const AttentionMeta& meta, const Shape& sh, float* partials) {
  const int32_t* qsl = meta.query_start_loc.ptr<int32_t>();
  const int32_t* tables = meta.block_tables.ptr<int32_t>() + int64_t(task.seq) * meta.block_tables.size(1);
  const int64_t seq_len = meta.seq_lens.ptr<int32_t>()[task.seq];
  const int64_t q_len = qsl[task.seq + 1] - qsl[task.seq];
  const int64_t first_pos = seq_len - q_len;  // position of the sequence's first query token
  const int64_t tokens = task.q1 - task.q0, group = sh.group, d = sh.d, bs = sh.block_size;
  const int64_t rows = tokens * group, slot = sh.kv_heads * d, kvh = task.kvh;

  Scratch& s = tl_scratch;
  s.q.resize(size_t(rows * d));
  s.acc.assign(size_t(rows * d), 0.f);
  s.m.assign(size_t(rows), kNegInf);
  s.l.assign(size_t(rows), 0.f);
  s.k.resize(size_t(bs * d));
  s.v.resize(size_t(bs * d));
  s.p.resize(size_t(rows * bs));
  for (int64_t j = 0; j < tokens; ++j)
    for (int64_t g = 0; g < group; ++g) {
      const T* qr =
          query.ptr<T>() + (qsl[task.seq] + task.q0 + j) * query.stride(0) + (kvh * group + g) * query.stride(1);
      float* dst = s.q.data() + (j * group + g) * d;
      load_row(dst, qr, d);
      for (int64_t i = 0; i < d; ++i) dst[i] *= sh.scale;
    }

  // keys k_begin .. min(k_end, last token's position + 1); earlier tokens are masked causally.
  // NOTE: nothing at or past seqLen is read, so stale cache slots (which may hold NaN) never take part.
  const int64_t key_end = std::min<int64_t>(task.k_end, first_pos + task.q1);
  if (tokens == 1) decode_rows(s, kc, vc, tables, task.k_begin, key_end, kvh, sh);
  for (int64_t k0 = task.k_begin; tokens > 1 && k0 < key_end; k0 += bs) {
    const int64_t nk = std::min(bs, key_end - k0);
    const int64_t base = int64_t(tables[k0 / bs]) * bs * slot;
    const int64_t next_n = k0 + bs < key_end ? std::min(bs, key_end - k0 - bs) : 0;
    const int64_t next = next_n ? int64_t(tables[(k0 + bs) / bs]) * bs * slot + kvh * d : 0;
    {
      // this head's rows to a dense fp32 [bs][headSize] buffer that stays in L1 (in the cache they are a slot
      // apart, 4 KiB for Llama-3-8B in fp32, which would pile into one L1 set)
      for (int64_t t = 0; t < nk; ++t) {
        if (t < next_n) {
          prefetch_rows(kc + next + t * slot, 1, slot, d);
          prefetch_rows(vc + next + t * slot, 1, slot, d);
        }
        load_row(s.k.data() + t * d, kc + base + t * slot + kvh * d, d);
        load_row(s.v.data() + t * d, vc + base + t * slot + kvh * d, d);
      }
      const float* kb = s.k.data();
      const float* vb = s.v.data();
      for (int64_t j = 0; j < tokens; ++j) {
        const int64_t pos = first_pos + task.q0 + j;
        const int64_t visible = std::min(nk, pos + 1 - k0);  // keys of this block at positions <= pos
        if (visible <= 0) continue;
        const int64_t r0 = j * group;  // the token's rows, consecutive
        group_scores(s.p.data() + r0 * bs, bs, s.q.data() + r0 * d, kb, d, visible, group, d, kb, int64_t(0));
        // online softmax per row ...
        float corr[kMaxGroupRows];
        for (int64_t r = r0; r < r0 + sh.group; ++r) {
          float* p = s.p.data() + r * bs;
          float mx = s.m[size_t(r)];
          for (int64_t t = 0; t < visible; ++t) mx = std::max(mx, p[t]);
          corr[r - r0] = std::exp(s.m[size_t(r)] - mx);  // exp(-inf) = 0 on the first block
          s.m[size_t(r)] = mx;
          s.l[size_t(r)] = s.l[size_t(r)] * corr[r - r0] + exp_shift_sum(p, visible, mx);
        }
        // ... then acc = acc * corr + Σ_t p_t v_t
        pv_rows(s.acc.data() + r0 * d, s.p.data() + r0 * bs, bs, corr, vb, d, visible, group, d, vb, int64_t(0));
      }
    }
  }

  if (task.parts > 1) {  // (max, sum, unnormalised acc) per row, merged by merge_partials
    float* dst = partials + task.partial_offset;
    for (int64_t r = 0; r < rows; ++r) {
      dst[r * (d + 2)] = s.m[size_t(r)];
      dst[r * (d + 2) + 1] = s.l[size_t(r)];
      std::copy_n(s.acc.data() + r * d, d, dst + r * (d + 2) + 2);
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t j = r / group, h = kvh * group + r % group;
    T* o = out.ptr<T>() + (qsl[task.seq] + task.q0 + j) * out.stride(0) + h * out.stride(1);
    const float inv = 1.f / s.l[size_t(r)];
    const float* acc = s.acc.data() + r * d;
    for (int64_t i = 0; i < d; ++i) o[i] = from_float<T>(acc[i] * inv);
  }
}

// Combines the parts of a split context: weights sum_p · e^(max_p - max).
template <typename T>
void merge_partials(const Task& first, const TensorView& out, const AttentionMeta& meta, const Shape& sh,
                    const float* partials, int64_t part_stride) {
  const int32_t* qsl = meta.query_start_loc.ptr<int32_t>();
  const int64_t d = sh.d, rows = (first.q1 - first.q0) * sh.group;
  std::vector<float>& acc = tl_scratch.acc;
  for (int64_t r = 0; r < rows; ++r) {
    float mx = kNegInf;
    for (int p = 0; p < first.parts; ++p)
      mx = std::max(mx, partials[first.partial_offset + p * part_stride + r * (d + 2)]);
    acc.assign(size_t(d), 0.f);
    float total = 0.f;
    for (int p = 0; p < first.parts; ++p) {
      const float* src = partials + first.partial_offset + p * part_stride + r * (d + 2);
      if (src[1] == 0.f) continue;  // this part saw no keys
      const float w = std::exp(src[0] - mx);
      total += src[1] * w;
      for (int64_t i = 0; i < d; ++i) acc[size_t(i)] += src[2 + i] * w;
    }
    const int64_t j = r / sh.group, h = first.kvh * sh.group + r % sh.group;
    T* o = out.ptr<T>() + (qsl[first.seq] + first.q0 + j) * out.stride(0) + h * out.stride(1);
    for (int64_t i = 0; i < d; ++i) o[i] = from_float<T>(acc[size_t(i)] / total);
  }
}

template <typename T>
void paged_attention_impl(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                          const TensorView& value_cache, const AttentionMeta& meta) {
  Shape sh;
  sh.block_size = key_cache.size(1);
  sh.kv_heads = key_cache.size(2);
  sh.d = key_cache.size(3);
  sh.heads = query.size(1);
  sh.group = sh.heads / sh.kv_heads;
  if (sh.group > kMaxGroupRows)
    fail(ErrorKind::Range, "pagedAttention: numHeads / numKvHeads above ", kMaxGroupRows,
         " is not supported on the CPU");
  sh.scale = float(meta.scale);
  const int32_t* qsl = meta.query_start_loc.ptr<int32_t>();
  const int32_t* lens = meta.seq_lens.ptr<int32_t>();
  const int64_t seqs = meta.seq_lens.size(0);
  // Query chunks of ~64 rows (tokens x the group's heads) keep a task's accumulators in L1/L2.
  const int64_t chunk = std::max<int64_t>(1, 64 / sh.group);
  std::vector<Task> tasks;
  int64_t total_keys = 0;
  for (int64_t sq = 0; sq < seqs; ++sq) total_keys += lens[sq];
  // Split long contexts (in whole blocks) until there are a few tasks per thread.
  const int64_t min_part = std::max<int64_t>(256, sh.block_size);
  const int64_t want = 4 * num_threads();
  int64_t partial_floats = 0;
  for (int64_t sq = 0; sq < seqs; ++sq) {
    const int64_t q_len = qsl[sq + 1] - qsl[sq];
    if (q_len == 0) continue;
    int64_t parts = 1;
    if (q_len <= chunk && seqs * sh.kv_heads < want) {
      const int64_t per_seq = (want + seqs * sh.kv_heads - 1) / (seqs * sh.kv_heads);
      parts = std::min<int64_t>(per_seq, (lens[sq] + min_part - 1) / min_part);
      parts = std::max<int64_t>(1, parts);
    }
    const int64_t span = ((lens[sq] + parts - 1) / parts + sh.block_size - 1) / sh.block_size * sh.block_size;
    parts = std::max<int64_t>(1, (lens[sq] + span - 1) / span);
    for (int64_t q0 = 0; q0 < q_len; q0 += chunk) {
      const int32_t q1 = int32_t(std::min(q0 + chunk, q_len));
      const int64_t rows = (q1 - q0) * sh.group;
      for (int64_t kvh = 0; kvh < sh.kv_heads; ++kvh)
        for (int64_t p = 0; p < parts; ++p) {
          tasks.push_back({int32_t(sq), int32_t(kvh), int32_t(q0), q1, int32_t(p * span),
                           int32_t(std::min<int64_t>(lens[sq], (p + 1) * span)), int32_t(p), int32_t(parts),
                           partial_floats});
          if (parts > 1) partial_floats += rows * (sh.d + 2);
        }
    }
  }
  // Costliest first (rows x keys read), so the last tasks to start are short ones.
  auto cost = [&](const Task& t) {
    const int64_t last_pos = lens[t.seq] - (qsl[t.seq + 1] - qsl[t.seq]) + t.q1;
    return (t.q1 - t.q0) * (std::min<int64_t>(t.k_end, last_pos) - t.k_begin);
  };
  std::vector<Task> order = tasks;
  std::stable_sort(order.begin(), order.end(), [&](const Task& a, const Task& b) { return cost(a) > cost(b); });
  std::vector<float> partials(static_cast<size_t>(partial_floats));
  parallel_tasks(int64_t(order.size()), [&](int64_t i) {
    attention_task<T>(order[size_t(i)], out, query, key_cache.ptr<T>(), value_cache.ptr<T>(), meta, sh,
                      partials.data());
  });
  // merge split contexts: each (sequence, chunk) whose first part is tasks[i] with parts > 1
  std::vector<int64_t> firsts;
  for (size_t i = 0; i < tasks.size(); ++i)
    if (tasks[i].parts > 1 && tasks[i].part == 0) firsts.push_back(int64_t(i));
  parallel_tasks(int64_t(firsts.size()), [&](int64_t i) {
    const Task& f = tasks[size_t(firsts[size_t(i)])];
    merge_partials<T>(f, out, meta, sh, partials.data(), (f.q1 - f.q0) * sh.group * (sh.d + 2));
  });
}

}  // namespace

void paged_attention(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                     const TensorView& value_cache, const AttentionMeta& meta) {
  check_attention_meta_values(meta, query.size(0), key_cache.size(0), key_cache.size(1));
  MVLLM_CPU_DISPATCH_FLOAT(query.dtype, T, paged_attention_impl<T>(out, query, key_cache, value_cache, meta));
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
