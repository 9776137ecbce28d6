// Paged attention on the CPU: causal softmax(q·kᵀ·scale)·v over K/V gathered through each sequence's block
// table, with an online (streaming) softmax in fp32. One task per (sequence, KV head, chunk of query tokens);
// the query heads that share a KV head (GQA) are done together, so each K/V row is read once per chunk.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "dispatch.h"
#include "kernels.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Task {
  int32_t seq, kv_head, q0, q1;  // query tokens [q0, q1) of the sequence (0 = its first query token)
};

inline float dot(const float* a, const float* b, int64_t n) {
  constexpr int N = Vec::N;
  Vec acc = vset1(0.f);
  int64_t i = 0;
  for (; i + N <= n; i += N) acc = vfma(vload(a + i), vload(b + i), acc);
  float s = vsum(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// acc[0:n] = acc * c + p * v
inline void scale_axpy(float* acc, float c, float p, const float* v, int64_t n) {
  constexpr int N = Vec::N;
  const Vec vc = vset1(c), vp = vset1(p);
  int64_t i = 0;
  for (; i + N <= n; i += N) vstore(acc + i, vfma(vp, vload(v + i), vload(acc + i) * vc));
  for (; i < n; ++i) acc[i] = acc[i] * c + p * v[i];
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

template <typename T>
void attention_task(const Task& task, const TensorView& out, const TensorView& query, const T* kc, const T* vc,
                    const AttentionMeta& meta, int64_t block_size, int64_t kv_heads, int64_t group, int64_t d,
                    float scale) {
  const int32_t* qsl = meta.query_start_loc.ptr<int32_t>();
  const int32_t* tables = meta.block_tables.ptr<int32_t>() + int64_t(task.seq) * meta.block_tables.size(1);
  const int64_t seq_len = meta.seq_lens.ptr<int32_t>()[task.seq];
  const int64_t q_len = qsl[task.seq + 1] - qsl[task.seq];
  const int64_t first_pos = seq_len - q_len;  // position of the sequence's first query token
  const int64_t tokens = task.q1 - task.q0, rows = tokens * group;

  Scratch& s = tl_scratch;
  s.q.resize(size_t(rows * d));
  s.acc.assign(size_t(rows * d), 0.f);
  s.m.assign(size_t(rows), kNegInf);
  s.l.assign(size_t(rows), 0.f);
  s.k.resize(size_t(block_size * d));
  s.v.resize(size_t(block_size * d));
  s.p.resize(size_t(rows * block_size));
  // row r = (token j, head g in the group): q pre-scaled, in fp32
  for (int64_t j = 0; j < tokens; ++j)
    for (int64_t g = 0; g < group; ++g) {
      const T* qr = query.ptr<T>() + (qsl[task.seq] + task.q0 + j) * query.stride(0) +
                    (task.kv_head * group + g) * query.stride(1);
      float* dst = s.q.data() + (j * group + g) * d;
      load_row(dst, qr, d);
      for (int64_t i = 0; i < d; ++i) dst[i] *= scale;
    }

  // keys 0 .. last_pos: the chunk's last token sees them all; earlier tokens are masked causally.
  // NOTE: nothing at or past seqLen is read, so stale cache slots (which may hold NaN) never take part.
  const int64_t last_pos = first_pos + task.q1 - 1;
  const int64_t slot_stride = kv_heads * d;
  for (int64_t b = 0; b * block_size <= last_pos; ++b) {
    const int64_t k0 = b * block_size, nk = std::min(block_size, last_pos + 1 - k0);
    const int64_t base = int64_t(tables[b]) * block_size * slot_stride + task.kv_head * d;
    for (int64_t t = 0; t < nk; ++t) {
      load_row(s.k.data() + t * d, kc + base + t * slot_stride, d);
      load_row(s.v.data() + t * d, vc + base + t * slot_stride, d);
    }
    for (int64_t j = 0; j < tokens; ++j) {
      const int64_t pos = first_pos + task.q0 + j;
      const int64_t visible = std::min(nk, pos + 1 - k0);  // keys of this block at positions <= pos
      if (visible <= 0) continue;
      for (int64_t g = 0; g < group; ++g) {
        const int64_t r = j * group + g;
        const float* qr = s.q.data() + r * d;
        float* p = s.p.data() + r * block_size;
        float mx = s.m[size_t(r)];
        for (int64_t t = 0; t < visible; ++t) {
          p[t] = dot(qr, s.k.data() + t * d, d);
          mx = std::max(mx, p[t]);
        }
        const float corr = std::exp(s.m[size_t(r)] - mx);  // exp(-inf) = 0 on the first block
        float sum = 0.f;
        for (int64_t t = 0; t < visible; ++t) {
          p[t] = std::exp(p[t] - mx);
          sum += p[t];
        }
        s.m[size_t(r)] = mx;
        s.l[size_t(r)] = s.l[size_t(r)] * corr + sum;
        float* acc = s.acc.data() + r * d;
        scale_axpy(acc, corr, p[0], s.v.data(), d);
        for (int64_t t = 1; t < visible; ++t) scale_axpy(acc, 1.f, p[t], s.v.data() + t * d, d);
      }
    }
  }
  for (int64_t j = 0; j < tokens; ++j)
    for (int64_t g = 0; g < group; ++g) {
      const int64_t r = j * group + g;
      T* o = out.ptr<T>() + (qsl[task.seq] + task.q0 + j) * out.stride(0) + (task.kv_head * group + g) * out.stride(1);
      const float inv = 1.f / s.l[size_t(r)];
      const float* acc = s.acc.data() + r * d;
      for (int64_t i = 0; i < d; ++i) o[i] = from_float<T>(acc[i] * inv);
    }
}

template <typename T>
void paged_attention_impl(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                          const TensorView& value_cache, const AttentionMeta& meta) {
  const int64_t block_size = key_cache.size(1), kv_heads = key_cache.size(2), d = key_cache.size(3);
  const int64_t group = query.size(1) / kv_heads;
  const int32_t* qsl = meta.query_start_loc.ptr<int32_t>();
  const int64_t seqs = meta.seq_lens.size(0);
  // Query chunks of up to ~32 rows (tokens x heads of the group) keep a task's accumulators in L1/L2.
  const int64_t chunk = std::max<int64_t>(1, 32 / group);
  std::vector<Task> tasks;
  for (int64_t sq = 0; sq < seqs; ++sq)
    for (int64_t q0 = 0; q0 < qsl[sq + 1] - qsl[sq]; q0 += chunk)
      for (int64_t h = 0; h < kv_heads; ++h)
        tasks.push_back({int32_t(sq), int32_t(h), int32_t(q0),
                         int32_t(std::min<int64_t>(q0 + chunk, qsl[sq + 1] - qsl[sq]))});
  // Costliest first (rows x keys read), so the last tasks to start are short ones.
  const int32_t* lens = meta.seq_lens.ptr<int32_t>();
  auto cost = [&](const Task& t) {
    const int64_t last_pos = lens[t.seq] - (qsl[t.seq + 1] - qsl[t.seq]) + t.q1;
    return (t.q1 - t.q0) * last_pos;
  };
  std::stable_sort(tasks.begin(), tasks.end(), [&](const Task& a, const Task& b) { return cost(a) > cost(b); });
  const float scale = float(meta.scale);
  parallel_tasks(int64_t(tasks.size()), [&](int64_t i) {
    attention_task<T>(tasks[size_t(i)], out, query, key_cache.ptr<T>(), value_cache.ptr<T>(), meta, block_size,
                      kv_heads, group, d, scale);
  });
}

}  // namespace

void paged_attention(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                     const TensorView& value_cache, const AttentionMeta& meta) {
  check_attention_meta_values(meta, query.size(0), key_cache.size(0), key_cache.size(1));
  MVLLM_CPU_DISPATCH_FLOAT(query.dtype, T,
                           paged_attention_impl<T>(out, query, key_cache, value_cache, meta));
}

}  // namespace mvllm::cpu
