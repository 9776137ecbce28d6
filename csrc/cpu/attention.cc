// Paged attention on the CPU: causal softmax(q·kᵀ·scale)·v over K/V gathered through each sequence's block
// table, with an online (streaming) softmax in fp32. One task per (sequence, KV head, chunk of query tokens);
// the query heads that share a KV head (GQA) are done together, so each K/V tile is converted once and used by
// every row of the chunk (tokens x the group's heads, ~64 rows). Prefill holds a block's keys transposed, so its
// scores are broadcast FMAs with the keys along the lanes and need no horizontal sums; decode reads the cache in
// place (the tiles are in attention_tiles.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention_tiles.h"
#include "dispatch.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

using namespace attn;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Query tokens [q0, q1) of sequence `seq` (0 = its first query token), the query heads of KV head `kvh`, over the
// keys in [k_begin, k_end) (a split of a long context; partials are merged after).
struct Task {
  int32_t seq, kvh, q0, q1, k_begin, k_end, part, parts;
  int64_t partial_offset;  // where this task's (max, sum, acc) rows go when parts > 1
};

// Per-thread scratch, reused across calls.
struct Scratch {
  std::vector<float> q, acc, m, l, k, v, p, corr, row;
};
thread_local Scratch tl_scratch;

// numHeads / numKvHeads at most this (checked in paged_attention_impl).
constexpr int64_t kMaxGroupRows = 256;

struct Shape {
  int64_t block_size, kv_heads, heads, group, d;
  int64_t kpad;  // prefill: a transposed key block's row length, the block size rounded up to the vector width
  float scale;
  int64_t window;  // > 0: a token at position p sees keys [p - window + 1, p] only
  float cap;       // > 0: scores soft-capped to cap * tanh(score / cap)
};

// Gemma 2's soft-capping of n scores, in place.
inline void soft_cap(float* p, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) p[i] = cap * std::tanh(p[i] / cap);
}

// One query token (a decode step) over keys [k_begin, key_end) (any start: a sliding window's need not be a block's):
// the group's scores for every key straight from the cache (no fp32 copy), one softmax, then Σ p·v, into s.m, s.l and
// s.acc (rows = the group, q already in s.q). Keys outside the range are never read.
template <typename T>
void decode_rows(Scratch& s, const T* kc, const T* vc, const int32_t* tables, int64_t k_begin, int64_t key_end,
                 int64_t kvh, const Shape& sh) {
  const int64_t group = sh.group, d = sh.d, bs = sh.block_size, slot = sh.kv_heads * d, n = key_end - k_begin;
  if (n <= 0) return;  // a part with no keys: m = -inf, l = 0
  s.p.resize(size_t(group * n));
  float* p = s.p.data();
  // key k's row of this KV head, and the end of k's block (or key_end)
  auto row_of = [&](const T* cache, int64_t k) {
    return cache + (int64_t(tables[k / bs]) * bs + k % bs) * slot + kvh * d;
  };
  auto block_end = [&](int64_t k) { return std::min(key_end, (k / bs + 1) * bs); };
  for (int64_t k0 = k_begin; k0 < key_end;) {
    const int64_t k1 = block_end(k0), next_n = k1 < key_end ? block_end(k1) - k1 : 0;
    group_scores(p + (k0 - k_begin), n, s.q.data(), row_of(kc, k0), slot, k1 - k0, group, d,
                 next_n ? row_of(kc, k1) : kc, next_n);
    k0 = k1;
  }
  // softmax per row, then acc = Σ p·v block by block
  for (int64_t r = 0; r < group; ++r) {
    if (sh.cap > 0) soft_cap(p + r * n, n, sh.cap);
    const float mx = max_of(p + r * n, n);
    s.m[size_t(r)] = mx;
    s.l[size_t(r)] = exp_shift_sum(p + r * n, n, mx);
  }
  for (int64_t k0 = k_begin; k0 < key_end;) {
    const int64_t k1 = block_end(k0), next_n = k1 < key_end ? block_end(k1) - k1 : 0;
    pv_rows(s.acc.data(), p + (k0 - k_begin), n, nullptr, row_of(vc, k0), slot, k1 - k0, group, d,
            next_n ? row_of(vc, k1) : vc, next_n);
    k0 = k1;
  }
}

// A cache block's bs keys of one KV head into s.k transposed ([headSize][kpad], kpad = bs rounded up to the vector
// width, the padding zero) and its values into s.v ([bs][headSize]), both fp32 and dense, so they stay in L1 (in the
// cache the rows are a slot apart, 4 KiB for Llama-3-8B in fp32, which would pile into one L1 set). Meanwhile the
// next block's next_n rows are prefetched.
template <typename T>
void load_block(Scratch& s, const T* k, const T* v, int64_t slot, int64_t nk, const Shape& sh, const T* next_k,
                const T* next_v, int64_t next_n) {
  const int64_t d = sh.d, kpad = sh.kpad;
  s.row.resize(size_t(d));
  float* row = s.row.data();
  for (int64_t t = 0; t < sh.block_size; ++t) {
    if (t < next_n) {
      prefetch_rows(next_k + t * slot, 1, slot, d);
      prefetch_rows(next_v + t * slot, 1, slot, d);
    }
    if (t < nk) {
      load_row(row, k + t * slot, d);
      load_row(s.v.data() + t * d, v + t * slot, d);
    } else {
      std::fill_n(row, d, 0.f);
      std::fill_n(s.v.data() + t * d, d, 0.f);
    }
    for (int64_t i = 0; i < d; ++i) s.k[size_t(i * kpad + t)] = row[i];
  }
}

// One block of nk keys at k0 (in s.k / s.v) for `tokens` query tokens at positions pos0.. (rows token x group, q in
// s.q). Token j sees the block's keys [lo_j, hi_j): up to its own position, and from its window's start. The scores of
// every token that sees a key of the block at once, the online softmax per row over what it sees, then Σ p·v, at once
// for the tokens that see the whole block and token by token at the edges (a key a token must not see is never
// multiplied, so a non-finite value there cannot reach it).
inline void prefill_block(Scratch& s, int64_t pos0, int64_t tokens, int64_t k0, int64_t nk, const Shape& sh) {
  const int64_t group = sh.group, d = sh.d, kpad = sh.kpad, w = sh.window;
  const int64_t j_lo = std::max<int64_t>(0, k0 - pos0);  // first token that sees key k0
  // past j_end the window has left the block
  const int64_t j_end = w > 0 ? std::min(tokens, k0 + nk + w - 1 - pos0) : tokens;
  if (j_lo >= j_end) return;
  auto lo = [&](int64_t j) { return w > 0 ? std::clamp<int64_t>(pos0 + j - w + 1 - k0, 0, nk) : 0; };
  auto hi = [&](int64_t j) { return std::min(nk, pos0 + j + 1 - k0); };
  // the tokens that see all nk keys: [j_full, j_full_end)
  const int64_t j_full = std::min(j_end, std::max(j_lo, k0 + nk - 1 - pos0));
  const int64_t j_full_end = w > 0 ? std::max(j_full, std::min(j_end, k0 + w - pos0)) : j_end;
  float* p = s.p.data();
  block_scores(p + j_lo * group * kpad, s.q.data() + j_lo * group * d, (j_end - j_lo) * group, d, s.k.data(), kpad);
  for (int64_t r = j_lo * group; r < j_end * group; ++r) {
    const int64_t a = lo(r / group), b = hi(r / group);
    float* pr = p + r * kpad;
    if (sh.cap > 0) soft_cap(pr + a, b - a, sh.cap);
    const float mx = std::max(s.m[size_t(r)], max_of(pr + a, b - a));
    s.corr[size_t(r)] = std::exp(s.m[size_t(r)] - mx);  // exp(-inf) = 0 on the first block
    s.m[size_t(r)] = mx;
    s.l[size_t(r)] = s.l[size_t(r)] * s.corr[size_t(r)] + exp_shift_sum(pr + a, b - a, mx);
  }
  auto one = [&](int64_t j) {
    const int64_t a = lo(j);
    pv_rows(s.acc.data() + j * group * d, p + j * group * kpad + a, kpad, s.corr.data() + j * group, s.v.data() + a * d,
            d, hi(j) - a, group, d, s.v.data(), int64_t(0));
  };
  for (int64_t j = j_lo; j < j_full; ++j) one(j);
  if (j_full < j_full_end)
    pv_rows(s.acc.data() + j_full * group * d, p + j_full * group * kpad, kpad, s.corr.data() + j_full * group,
            s.v.data(), d, nk, (j_full_end - j_full) * group, d, s.v.data(), int64_t(0));
  for (int64_t j = j_full_end; j < j_end; ++j) one(j);
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
  // the first key any token of the task sees (its first token's window start)
  const int64_t window_lo = sh.window > 0 ? std::max<int64_t>(0, first_pos + task.q0 - sh.window + 1) : 0;
  if (tokens == 1) {
    decode_rows(s, kc, vc, tables, std::max<int64_t>(task.k_begin, window_lo), key_end, kvh, sh);
  } else {
    s.k.resize(size_t(sh.kpad * d));
    s.v.resize(size_t(bs * d));
    s.p.resize(size_t(rows * sh.kpad));
    s.corr.resize(size_t(rows));
    // whole blocks before every token's window are skipped (k_begin is a block start)
    for (int64_t k0 = std::max<int64_t>(task.k_begin, window_lo / bs * bs); k0 < key_end; k0 += bs) {
      const int64_t nk = std::min(bs, key_end - k0);
      const T* next = k0 + bs < key_end ? kc + int64_t(tables[(k0 + bs) / bs]) * bs * slot + kvh * d : nullptr;
      const int64_t next_n = next ? std::min(bs, key_end - k0 - bs) : 0;
      load_block(s, kc + int64_t(tables[k0 / bs]) * bs * slot + kvh * d,
                 vc + int64_t(tables[k0 / bs]) * bs * slot + kvh * d, slot, nk, sh, next,
                 next ? vc + (next - kc) : next, next_n);
      prefill_block(s, first_pos + task.q0, tokens, k0, nk, sh);
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
  sh.kpad = (sh.block_size + Vec::N - 1) / Vec::N * Vec::N;
  if (sh.group > kMaxGroupRows)
    fail(ErrorKind::Range, "pagedAttention: numHeads / numKvHeads above ", kMaxGroupRows,
         " is not supported on the CPU");
  sh.scale = float(meta.scale);
  sh.window = meta.sliding_window;
  sh.cap = float(meta.logits_soft_cap);
  const int32_t* qsl = meta.query_start_loc.ptr<int32_t>();
  const int32_t* lens = meta.seq_lens.ptr<int32_t>();
  const int64_t seqs = meta.seq_lens.size(0);
  // Query chunks of ~64 rows (tokens x the group's heads) keep a task's accumulators in L1/L2.
  const int64_t chunk = std::max<int64_t>(1, 64 / sh.group);
  std::vector<Task> tasks;
  int64_t total_keys = 0;
  // a sequence's keys start at its first query token's window start, in whole blocks
  auto first_key = [&](int64_t sq) -> int64_t {
    if (sh.window <= 0) return 0;
    const int64_t first_pos = lens[sq] - (qsl[sq + 1] - qsl[sq]);
    return std::max<int64_t>(0, first_pos - sh.window + 1) / sh.block_size * sh.block_size;
  };
  for (int64_t sq = 0; sq < seqs; ++sq) total_keys += lens[sq] - first_key(sq);
  // Split long contexts (in whole blocks) until there are a few tasks per thread.
  const int64_t min_part = std::max<int64_t>(256, sh.block_size);
  const int64_t want = 4 * num_threads();
  int64_t partial_floats = 0;
  for (int64_t sq = 0; sq < seqs; ++sq) {
    const int64_t q_len = qsl[sq + 1] - qsl[sq];
    if (q_len == 0) continue;
    const int64_t k0 = first_key(sq), keys = lens[sq] - k0;
    int64_t parts = 1;
    if (q_len <= chunk && seqs * sh.kv_heads < want) {
      const int64_t per_seq = (want + seqs * sh.kv_heads - 1) / (seqs * sh.kv_heads);
      parts = std::min<int64_t>(per_seq, (keys + min_part - 1) / min_part);
      parts = std::max<int64_t>(1, parts);
    }
    const int64_t span = ((keys + parts - 1) / parts + sh.block_size - 1) / sh.block_size * sh.block_size;
    parts = std::max<int64_t>(1, (keys + span - 1) / span);
    for (int64_t q0 = 0; q0 < q_len; q0 += chunk) {
      const int32_t q1 = int32_t(std::min(q0 + chunk, q_len));
      const int64_t rows = (q1 - q0) * sh.group;
      for (int64_t kvh = 0; kvh < sh.kv_heads; ++kvh)
        for (int64_t p = 0; p < parts; ++p) {
          tasks.push_back({int32_t(sq), int32_t(kvh), int32_t(q0), q1, int32_t(k0 + p * span),
                           int32_t(std::min<int64_t>(lens[sq], k0 + (p + 1) * span)), int32_t(p), int32_t(parts),
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
