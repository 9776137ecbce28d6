// mvllm_cpu_check: every CPU level this build holds and this machine runs, against the baseline level of the same
// build (scalar: csrc/cpu's generic code), op by op, on the same random inputs: every op of MVLLM_FOR_EACH_OP and the
// copies, every float dtype, every quantised type, shapes that are odd and shapes that fill the vector paths. The
// baseline itself is checked against the TypeScript reference by `npm test`; this program is what checks a level that
// no Node on this machine can load (the neon level, cross-built and run under qemu-aarch64 by test/arm64/run.mjs).
//
//   mvllm_cpu_check [--require <level>] [--only <substring>] [--verbose]
//
// Ends with a plain "N passed, N failed" line; exit status 1 on a failure, or when --require names a level that this
// build lacks or this machine cannot run (a check that compared nothing is not a pass).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../../csrc/core/dtype.h"
#include "../../csrc/core/error.h"
#include "../../csrc/core/op_checks.h"
#include "../../csrc/core/quant.h"
#include "../../csrc/core/tensor.h"
#include "../../csrc/cpu/isa.h"
#include "../../csrc/cpu/parallel.h"

using namespace mvllm;
using cpu::Kernels;

namespace {

// ---- inputs ----

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint32_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return uint32_t(s >> 16);
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * float(next() & 0xFFFFFF) / 16777216.f; }
  int64_t below(int64_t n) { return int64_t(next() % uint32_t(n)); }
};

// A dense tensor that owns its bytes (64-byte aligned, so the streaming stores' paths run too).
struct T {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> mem;
  TensorView v;

  T() = default;
  T(DType dt, std::vector<int64_t> s) : dtype(dt), shape(std::move(s)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    mem.assign(size_t(n) * dtype_size(dt) + 64, 0);
    v.data = mem.data() + (64 - reinterpret_cast<uintptr_t>(mem.data()) % 64) % 64;
    v.dtype = dt;
    v.ndim = int(shape.size());
    int64_t stride = 1;
    for (int i = v.ndim - 1; i >= 0; --i)
      v.shape[i] = shape[size_t(i)], v.strides[i] = stride, stride *= shape[size_t(i)];
  }
  T(const T& o) : T(o.dtype, o.shape) { std::memcpy(v.data, o.v.data, size_t(numel()) * dtype_size(dtype)); }
  T& operator=(const T& o) {
    if (this != &o) {
      T c(o);
      std::swap(*this, c);
    }
    return *this;
  }
  T(T&& o) noexcept = default;
  T& operator=(T&& o) noexcept = default;

  int64_t numel() const { return v.numel(); }
  float get(int64_t i) const {
    switch (dtype) {
      case DType::Float32: return static_cast<const float*>(v.data)[i];
      case DType::Float16: return f16_to_float(static_cast<const uint16_t*>(v.data)[i]);
      case DType::BFloat16: return bf16_to_float(static_cast<const uint16_t*>(v.data)[i]);
      case DType::Int32: return float(static_cast<const int32_t*>(v.data)[i]);
    }
    return 0.f;
  }
  void set(int64_t i, float x) {
    switch (dtype) {
      case DType::Float32: static_cast<float*>(v.data)[i] = x; break;
      case DType::Float16: static_cast<uint16_t*>(v.data)[i] = float_to_f16(x); break;
      case DType::BFloat16: static_cast<uint16_t*>(v.data)[i] = float_to_bf16(x); break;
      case DType::Int32: static_cast<int32_t*>(v.data)[i] = int32_t(x); break;
    }
  }
  int32_t* i32() const { return static_cast<int32_t*>(v.data); }
};

T random(Rng& r, DType dt, std::vector<int64_t> shape, float lo = -1.f, float hi = 1.f) {
  T t(dt, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, r.uniform(lo, hi));
  return t;
}
T ints(std::vector<int32_t> values) {
  T t(DType::Int32, {int64_t(values.size())});
  std::memcpy(t.v.data, values.data(), values.size() * 4);
  return t;
}
MaybeTensor maybe(const T* t) {
  MaybeTensor m;
  if (t) static_cast<TensorView&>(m) = t->v;
  return m;
}

// A quantised [rows, rowWords] weight: random quants, and scales that are small finite halves (random bytes would
// make NaN and infinity scales, which no file holds).
T random_quant(Rng& r, int type, int64_t rows, int64_t cols) {
  QuantFormat f{};
  quant_format(type, &f);
  const int64_t words = quant_row_words(f, cols), nb = cols / f.block;
  T t(DType::Int32, {rows, words});
  auto half = [&](uint8_t* p, float lo, float hi) {
    const uint16_t h = float_to_f16(r.uniform(lo, hi));
    p[0] = uint8_t(h & 0xFF), p[1] = uint8_t(h >> 8);
  };
  for (int64_t row = 0; row < rows; ++row) {
    uint8_t* base = static_cast<uint8_t*>(t.v.data) + row * words * 4;
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* p = base + b * f.bytes;
      for (int i = 0; i < f.bytes; ++i) p[i] = uint8_t(r.next());
      switch (type) {
        case kQ8_0:
          half(p, 0.001f, 0.02f);
          for (int i = 2; i < 34; ++i)
            if (p[i] == 0x80) p[i] = 0x81;  // ggml's quantiser writes -127..127
          break;
        case kQ4_1:
        case kQ5_1:
          half(p, 0.001f, 0.05f);
          half(p + 2, -0.5f, 0.5f);
          break;
        case kQ4_K:
        case kQ5_K:
          half(p, 0.0005f, 0.005f);
          half(p + 2, 0.0005f, 0.005f);
          break;
        case kQ6_K: half(p + 208, 0.0005f, 0.005f); break;
        default: half(p, 0.001f, 0.05f); break;
      }
    }
  }
  return t;
}

// ---- comparing ----

const std::vector<DType> kFloats = {DType::Float32, DType::Float16, DType::BFloat16};

// |level - base| <= rel·|base| + abs·max|base|: rel covers a rounding step of the output's dtype landing the other way
// (two ulps), abs the fp32 sums' different order (the levels sum in different orders, at most ~1e-6 of the largest
// value in practice). A kernel that drops, repeats or misplaces a term is off by a whole term: far above either.
struct Tol {
  double rel, abs;
};
Tol tol_for(DType dt) {
  switch (dt) {
    case DType::Float16: return {2e-3, 2e-4};
    case DType::BFloat16: return {1.6e-2, 2e-3};
    default: return {1e-4, 1e-5};
  }
}

struct Result {
  bool ok = true;
  std::string detail;
};

void compare(const char* what, const T& base, const T& got, Result& res) {
  const Tol tol = tol_for(base.dtype);
  if (!res.ok) return;
  if (base.numel() != got.numel()) {
    res = {false, std::string(what) + ": element counts differ"};
    return;
  }
  if (base.dtype == DType::Int32) {
    for (int64_t i = 0; i < base.numel(); ++i)
      if (base.i32()[i] != got.i32()[i]) {
        res = {false, str(what, "[", i, "]: ", got.i32()[i], ", baseline ", base.i32()[i])};
        return;
      }
    return;
  }
  double m = 0;
  for (int64_t i = 0; i < base.numel(); ++i) m = std::max(m, double(std::fabs(base.get(i))));
  for (int64_t i = 0; i < base.numel(); ++i) {
    const double b = base.get(i), g = got.get(i);
    const bool same_special = (std::isnan(b) && std::isnan(g)) || (std::isinf(b) && b == g);
    if (same_special) continue;
    if (!(std::fabs(g - b) <= tol.rel * std::fabs(b) + tol.abs * m)) {
      res = {false,
             str(what, "[", i, "]: ", g, ", baseline ", b, " (bound ", tol.rel, "·|b| + ", tol.abs, "·", m, ")")};
      return;
    }
  }
}
// A case: runs the op under one level's table on inputs it builds from its own seed (the same for every level), and
// returns the tensors the op wrote.
using Outputs = std::vector<std::pair<std::string, T>>;
struct Case {
  std::string name;
  std::function<Outputs(const Kernels&)> run;
};
std::vector<Case> g_cases;

void add(std::string name, std::function<Outputs(const Kernels&)> run) {
  g_cases.push_back({std::move(name), std::move(run)});
}

const char* dn(DType d) { return dtype_name(d); }

// ---- the cases ----

void norm_cases() {
  for (DType dt : kFloats)
    for (int64_t tokens : {1, 3, 8})
      for (int64_t hidden : {1, 5, 16, 67, 256, 1000}) {
        const uint64_t seed = uint64_t(tokens * 7919 + hidden * 31 + int(dt));
        add(str("rmsNorm ", dn(dt), " [", tokens, ", ", hidden, "]"), [=](const Kernels& k) {
          Rng r{seed};
          T x = random(r, dt, {tokens, hidden}, -3, 3), w = random(r, dt, {hidden}, 0.5f, 1.5f),
            out(dt, {tokens, hidden});
          check_rms_norm(out.v, x.v, w.v, 1e-5);
          k.rms_norm(out.v, x.v, w.v, 1e-5);
          return Outputs{{"out", std::move(out)}};
        });
        add(str("fusedAddRmsNorm ", dn(dt), " [", tokens, ", ", hidden, "]"), [=](const Kernels& k) {
          Rng r{seed + 1};
          T x = random(r, dt, {tokens, hidden}, -3, 3), res = random(r, dt, {tokens, hidden}, -3, 3),
            w = random(r, dt, {hidden}, 0.5f, 1.5f);
          check_fused_add_rms_norm(x.v, res.v, w.v, 1e-6);
          k.fused_add_rms_norm(x.v, res.v, w.v, 1e-6);
          return Outputs{{"x", std::move(x)}, {"residual", std::move(res)}};
        });
      }
  for (DType dt : kFloats)
    for (int64_t head_dim : {8, 24, 128}) {
      const uint64_t seed = uint64_t(head_dim * 131 + int(dt));
      add(str("rmsNormHeads ", dn(dt), " [3, 5, ", head_dim, "]"), [=](const Kernels& k) {
        Rng r{seed};
        T x = random(r, dt, {3, 5, head_dim}, -3, 3), w = random(r, dt, {head_dim}, 0.5f, 1.5f),
          out(dt, {3, 5, head_dim});
        check_rms_norm_heads(out.v, x.v, w.v, 1e-6);
        k.rms_norm_heads(out.v, x.v, w.v, 1e-6);
        return Outputs{{"out", std::move(out)}};
      });
    }
}

void rope_cases() {
  for (DType dt : kFloats)
    for (int64_t head : {8, 64, 80, 128})
      for (int rot_div : {1, 2})
        for (bool neox : {true, false})
          for (bool f32_cache : {true, false}) {
            const int64_t tokens = 5, heads = 3, kv_heads = 1, rot = head / rot_div, max_pos = 40;
            const uint64_t seed = uint64_t(head * 13 + rot_div * 5 + neox * 3 + f32_cache + int(dt) * 101);
            add(str("rotaryEmbedding ", dn(dt), " head ", head, " rotary ", rot, neox ? " neox" : " gptj",
                    f32_cache ? " fp32 cache" : " cache in dtype", head == 80 ? " (no key)" : ""),
                [=](const Kernels& k) {
                  Rng r{seed};
                  T pos(DType::Int32, {tokens});
                  for (int64_t i = 0; i < tokens; ++i) pos.i32()[i] = int32_t(r.below(max_pos));
                  T q = random(r, dt, {tokens, heads * head}), key = random(r, dt, {tokens, kv_heads * head});
                  T cache = random(r, f32_cache ? DType::Float32 : dt, {max_pos, rot});
                  const bool with_key = head != 80;
                  const MaybeTensor km = maybe(with_key ? &key : nullptr);
                  check_rotary_embedding(pos.v, q.v, km, double(head), cache.v, neox);
                  k.rotary_embedding(pos.v, q.v, km, double(head), cache.v, neox);
                  Outputs o{{"query", std::move(q)}};
                  if (with_key) o.push_back({"key", std::move(key)});
                  return o;
                });
          }
}

void elementwise_cases() {
  for (DType dt : kFloats)
    for (int64_t tokens : {1, 4})
      for (int64_t d : {1, 7, 64, 333}) {
        const uint64_t seed = uint64_t(tokens * 17 + d + int(dt) * 1000);
        add(str("siluAndMul ", dn(dt), " [", tokens, ", 2 x ", d, "]"), [=](const Kernels& k) {
          Rng r{seed};
          T x = random(r, dt, {tokens, 2 * d}, -6, 6), out(dt, {tokens, d});
          check_silu_and_mul(out.v, x.v);
          k.silu_and_mul(out.v, x.v);
          return Outputs{{"out", std::move(out)}};
        });
        add(str("geluTanhAndMul ", dn(dt), " [", tokens, ", 2 x ", d, "]"), [=](const Kernels& k) {
          Rng r{seed};
          T x = random(r, dt, {tokens, 2 * d}, -6, 6), out(dt, {tokens, d});
          check_gelu_tanh_and_mul(out.v, x.v);
          k.gelu_tanh_and_mul(out.v, x.v);
          return Outputs{{"out", std::move(out)}};
        });
        add(str("add ", dn(dt), " [", tokens, ", ", d, "]"), [=](const Kernels& k) {
          Rng r{seed + 5};
          T a = random(r, dt, {tokens, d}), b = random(r, dt, {tokens, d}), out(dt, {tokens, d});
          check_add(out.v, a.v, b.v);
          k.add(out.v, a.v, b.v);
          return Outputs{{"out", std::move(out)}};
        });
        add(str("sigmoidGatedAdd ", dn(dt), " [", tokens, ", ", d, "]"), [=](const Kernels& k) {
          Rng r{seed + 6};
          T a = random(r, dt, {tokens, d}), b = random(r, dt, {tokens, d}), g = random(r, dt, {tokens, 1}, -8, 8),
            out(dt, {tokens, d});
          check_sigmoid_gated_add(out.v, a.v, b.v, g.v);
          k.sigmoid_gated_add(out.v, a.v, b.v, g.v);
          return Outputs{{"out", std::move(out)}};
        });
        add(str("scale, softCap ", dn(dt), " [", tokens, ", ", d, "]"), [=](const Kernels& k) {
          Rng r{seed + 7};
          T x = random(r, dt, {tokens, d}, -80, 80), scaled(dt, {tokens, d}), capped(dt, {tokens, d});
          check_scale(scaled.v, x.v, 1.5);
          k.scale(scaled.v, x.v, 1.5);
          check_soft_cap(capped.v, x.v, 30.0);
          k.soft_cap(capped.v, x.v, 30.0);
          return Outputs{{"scaled", std::move(scaled)}, {"capped", std::move(capped)}};
        });
        add(str("fillUniform ", dn(dt), " [", tokens, ", ", d, "]"), [=](const Kernels& k) {
          T out(dt, {tokens, d});
          check_fill_uniform(out.v, -2, 3, double(seed));
          k.fill_uniform(out.v, -2, 3, double(seed));
          return Outputs{{"out", std::move(out)}};
        });
        add(str("embedding, gatherRows ", dn(dt), " [", tokens, ", ", d, "]"), [=](const Kernels& k) {
          Rng r{seed + 9};
          T table = random(r, dt, {11, d}), ids(DType::Int32, {tokens}), out(dt, {tokens, d}), g(dt, {tokens, d});
          for (int64_t i = 0; i < tokens; ++i) ids.i32()[i] = int32_t(r.below(11));
          check_embedding(out.v, ids.v, table.v);
          k.embedding(out.v, ids.v, table.v);
          check_gather_rows(g.v, table.v, ids.v);
          k.gather_rows(g.v, table.v, ids.v);
          return Outputs{{"embedding", std::move(out)}, {"gatherRows", std::move(g)}};
        });
      }
  for (DType from : kFloats)
    for (DType to : kFloats)
      add(str("copy ", dn(from), " -> ", dn(to), " and fill"), [=](const Kernels& k) {
        Rng r{uint64_t(int(from) * 3 + int(to))};
        T src = random(r, from, {3, 77}, -70000, 70000), dst(to, {3, 77}), filled(to, {5, 33});
        src.set(5, NAN), src.set(6, INFINITY), src.set(7, 1e-40f), src.set(8, -0.f);
        k.copy(dst.v, src.v);
        k.fill(filled.v, -1.25);
        return Outputs{{"copy", std::move(dst)}, {"fill", std::move(filled)}};
      });
  add("streamRead", [](const Kernels& k) {
    Rng r{77};
    T t = random(r, DType::Float32, {1, 100003}), sum(DType::Float32, {1});
    sum.set(0, float(k.stream_read(t.v)));
    return Outputs{{"sum", std::move(sum)}};
  });
}

void attention_cases() {
  struct Shape {
    int64_t head, heads, kv_heads, block;
    std::vector<int> q_lens, seq_lens;
    int64_t window = 0;  // meta.slidingWindow
    double cap = 0;      // meta.logitsSoftCap
  };
  const std::vector<Shape> shapes = {
      {64, 4, 2, 16, {13, 5, 1}, {40, 5, 90}, 21, 0},  // a sliding window mid-block
      {128, 4, 1, 16, {1, 30}, {3000, 70}, 300, 30},   // a split decode in a window, soft-capped
      {64, 2, 1, 8, {9, 1}, {50, 33}, 0, 5},           // soft-capped alone
      {8, 2, 1, 16, {1}, {1}},
      {64, 4, 2, 16, {1, 1, 1}, {5, 40, 17}},
      {128, 8, 2, 16, {1, 1}, {300, 33}},
      {80, 2, 2, 8, {7, 1}, {7, 20}},
      {64, 4, 1, 16, {13, 5, 1}, {40, 5, 9}},
      {256, 2, 1, 32, {3}, {70}},
      {136, 3, 3, 16, {2, 9}, {2, 30}},
      {64, 2, 1, 16, {1}, {3000}},  // long enough to split the context
  };
  for (DType dt : kFloats)
    for (size_t si = 0; si < shapes.size(); ++si) {
      const Shape s = shapes[si];
      std::string lens;
      for (size_t i = 0; i < s.q_lens.size(); ++i) lens += str(i ? " " : "", s.q_lens[i], "/", s.seq_lens[i]);
      add(str("reshapeAndCache, pagedAttention ", dn(dt), " head ", s.head, " heads ", s.heads, "/", s.kv_heads,
              " block ", s.block, " query/context ", lens, s.window ? str(" window ", s.window) : "",
              s.cap ? str(" soft cap ", s.cap) : ""),
          [=](const Kernels& k) {
            Rng r{uint64_t(si * 100 + int(dt))};
            const int64_t seqs = int64_t(s.q_lens.size());
            int64_t width = 0, tokens = 0;
            for (int64_t i = 0; i < seqs; ++i)
              width = std::max<int64_t>(width, (s.seq_lens[size_t(i)] + s.block - 1) / s.block),
              tokens += s.q_lens[size_t(i)];
            const int64_t blocks = width * seqs + 3;
            T kc = random(r, dt, {blocks, s.block, s.kv_heads, s.head}, -2, 2);
            T vc = random(r, dt, {blocks, s.block, s.kv_heads, s.head});
            // each sequence's blocks, shuffled over the pool
            std::vector<int32_t> perm(static_cast<size_t>(blocks));
            for (int64_t i = 0; i < blocks; ++i) perm[size_t(i)] = int32_t(i);
            for (int64_t i = blocks - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[size_t(r.below(i + 1))]);
            T tables(DType::Int32, {seqs, width}), qsl(DType::Int32, {seqs + 1}), lens_t(DType::Int32, {seqs});
            std::vector<int32_t> slots;
            qsl.i32()[0] = 0;
            for (int64_t i = 0; i < seqs; ++i) {
              for (int64_t b = 0; b < width; ++b) tables.i32()[i * width + b] = perm[size_t(i * width + b)];
              lens_t.i32()[i] = s.seq_lens[size_t(i)];
              qsl.i32()[i + 1] = qsl.i32()[i] + s.q_lens[size_t(i)];
              for (int64_t p = s.seq_lens[size_t(i)] - s.q_lens[size_t(i)]; p < s.seq_lens[size_t(i)]; ++p)
                slots.push_back(tables.i32()[i * width + p / s.block] * int32_t(s.block) + int32_t(p % s.block));
            }
            // the new tokens' keys and values into the cache, then attention over it
            T key = random(r, dt, {tokens, s.kv_heads, s.head}, -2, 2),
              value = random(r, dt, {tokens, s.kv_heads, s.head});
            T slot = ints(slots);
            check_reshape_and_cache(key.v, value.v, kc.v, vc.v, slot.v);
            k.reshape_and_cache(key.v, value.v, kc.v, vc.v, slot.v);
            T q = random(r, dt, {tokens, s.heads, s.head}, -2, 2), out(dt, {tokens, s.heads, s.head});
            AttentionMeta m;
            m.query_start_loc = qsl.v;
            m.seq_lens = lens_t.v;
            m.block_tables = tables.v;
            m.scale = 1.0 / std::sqrt(double(s.head));
            m.sliding_window = s.window;
            m.logits_soft_cap = s.cap;
            check_paged_attention(out.v, q.v, kc.v, vc.v, m);
            k.paged_attention(out.v, q.v, kc.v, vc.v, m);
            return Outputs{{"keyCache", std::move(kc)}, {"valueCache", std::move(vc)}, {"out", std::move(out)}};
          });
    }
}

void linear_cases() {
  struct Shape {
    int64_t tokens, in, out;
  };
  const std::vector<Shape> shapes = {{1, 1, 1},     {1, 31, 7},     {2, 64, 33},   {3, 300, 100},
                                     {4, 256, 64},  {5, 17, 129},   {16, 128, 48}, {70, 96, 40},
                                     {1, 1024, 96}, {300, 300, 35}, {37, 200, 50}};
  for (DType xt : kFloats)
    for (DType wt : kFloats)
      for (size_t si = 0; si < shapes.size(); ++si) {
        const Shape s = shapes[si];
        if (xt != wt && si % 2 == 1) continue;  // mixed dtypes on half the shapes
        const bool bias = si % 3 != 0;
        add(str("linear, packLinearWeight, linearPacked, embeddingPacked x ", dn(xt), " weight ", dn(wt), " [",
                s.tokens, ", ", s.in, "] -> ", s.out, bias ? " + bias" : ""),
            [=](const Kernels& k) {
              Rng r{uint64_t(si * 10 + int(xt) * 3 + int(wt))};
              T x = random(r, xt, {s.tokens, s.in}), w = random(r, wt, {s.out, s.in}), b = random(r, xt, {s.out});
              T out(xt, {s.tokens, s.out}), packed(wt, {(s.out + 15) / 16, s.in, 16}), out2(xt, {s.tokens, s.out});
              const MaybeTensor bm = maybe(bias ? &b : nullptr);
              check_linear(out.v, x.v, w.v, bm);
              k.linear(out.v, x.v, w.v, bm);
              check_pack_linear_weight(packed.v, w.v);
              k.pack_linear_weight(packed.v, w.v);
              check_linear_packed(out2.v, x.v, packed.v, bm);
              k.linear_packed(out2.v, x.v, packed.v, bm);
              // the packed weight as a tied embedding: every row, the last first
              T ids(DType::Int32, {s.out}), rows(wt, {s.out, s.in});
              for (int64_t i = 0; i < s.out; ++i) ids.i32()[i] = int32_t(s.out - 1 - i);
              check_embedding_packed(rows.v, ids.v, packed.v, double(s.out));
              k.embedding_packed(rows.v, ids.v, packed.v, double(s.out));
              return Outputs{{"linear", std::move(out)},
                             {"packed", std::move(packed)},
                             {"linearPacked", std::move(out2)},
                             {"embeddingPacked", std::move(rows)}};
            });
      }
}

void quant_cases() {
  const int types[] = {kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ4_K, kQ5_K, kQ6_K};
  struct Shape {
    int64_t tokens, blocks, out;
  };
  // tokens: the integer GEMV (1..16 tokens, 1 to 4 at a time) and the dequantising GEMM (more)
  const std::vector<Shape> shapes = {{1, 1, 1},  {1, 3, 37},  {2, 2, 16}, {3, 4, 9},
                                     {5, 1, 70}, {16, 2, 33}, {40, 3, 20}};
  for (int type : types)
    for (DType dt : kFloats)
      for (size_t si = 0; si < shapes.size(); ++si) {
        const Shape s = shapes[si];
        QuantFormat f{};
        quant_format(type, &f);
        const int64_t in = s.blocks * f.block;
        const bool bias = si % 2 == 1;
        add(str("quantLinear ", f.name, " x ", dn(dt), " [", s.tokens, ", ", in, "] -> ", s.out, bias ? " + bias" : ""),
            [=](const Kernels& k) {
              Rng r{uint64_t(type * 1000 + si * 10 + int(dt))};
              T x = random(r, dt, {s.tokens, in}), w = random_quant(r, type, s.out, in), b = random(r, dt, {s.out});
              T out(dt, {s.tokens, s.out});
              const MaybeTensor bm = maybe(bias ? &b : nullptr);
              check_quant_linear(out.v, x.v, w.v, double(type), bm);
              k.quant_linear(out.v, x.v, w.v, double(type), bm);
              return Outputs{{"out", std::move(out)}};
            });
      }
  // Q4_0, Q8_0, Q4_K and Q6_K interleaved by 8 (packQuantWeight, quantLinearPacked, quantEmbeddingPacked): the packed
  // bits, the GEMV / GEMM over them and rows of the table
  const std::vector<Shape> x8_shapes = {{1, 1, 8},   {2, 3, 16},  {4, 2, 24}, {7, 5, 8},
                                        {16, 1, 40}, {40, 3, 16}, {33, 2, 72}};
  for (int type : {kQ4_0, kQ8_0, kQ4_K, kQ6_K})
    for (DType dt : kFloats)
      for (size_t si = 0; si < x8_shapes.size(); ++si) {
        const Shape s = x8_shapes[si];
        QuantFormat f{};
        quant_format(type, &f);
        const int64_t in = f.block * s.blocks;
        add(str("packQuantWeight, quantLinearPacked, quantEmbeddingPacked ", f.name, " x ", dn(dt), " [", s.tokens,
                ", ", in, "] -> ", s.out),
            [=](const Kernels& k) {
              Rng r{uint64_t(7000 + type * 100 + si * 10 + int(dt))};
              T x = random(r, dt, {s.tokens, in}), w = random_quant(r, type, s.out, in), b = random(r, dt, {s.out});
              T packed(DType::Int32, {s.out, w.v.size(1)}), out(dt, {s.tokens, s.out}), rows(dt, {3, in});
              T ids = ints({int32_t(s.out - 1), 0, int32_t(s.out / 2)});
              const MaybeTensor bm = maybe(si % 2 ? &b : nullptr);
              check_pack_quant_weight(packed.v, w.v, double(type));
              k.pack_quant_weight(packed.v, w.v, double(type));
              check_quant_linear_packed(out.v, x.v, packed.v, double(type), bm);
              k.quant_linear_packed(out.v, x.v, packed.v, double(type), bm);
              check_quant_embedding_packed(rows.v, ids.v, packed.v, double(type));
              k.quant_embedding_packed(rows.v, ids.v, packed.v, double(type));
              return Outputs{{"packed", std::move(packed)}, {"out", std::move(out)}, {"rows", std::move(rows)}};
            });
      }
  for (int type : types)
    for (DType dt : kFloats)
      add(str("quantEmbedding ", dn(dt), " ",
              [&] {
                QuantFormat f{};
                quant_format(type, &f);
                return f.name;
              }()),
          [=](const Kernels& k) {
            Rng r{uint64_t(type * 7 + int(dt))};
            QuantFormat f{};
            quant_format(type, &f);
            const int64_t hidden = 2 * f.block;
            T table = random_quant(r, type, 9, hidden), ids = ints({3, 0, 8, 3, 5}), out(dt, {5, hidden});
            check_quant_embedding(out.v, ids.v, table.v, double(type));
            k.quant_embedding(out.v, ids.v, table.v, double(type));
            return Outputs{{"out", std::move(out)}};
          });
}

// fusedMoe and quantFusedMoe: one token (each expert's GEMV), a decode batch, and 80 tokens on 2 experts (the GEMM)
void moe_cases() {
  struct Shape {
    int64_t tokens, experts, k;
  };
  const Shape shapes[] = {{1, 8, 2}, {9, 16, 8}, {80, 2, 2}};
  for (DType dt : kFloats)
    for (const Shape s : shapes) {
      add(str("fusedMoe ", dn(dt), " ", s.tokens, " tokens, ", s.experts, " experts top ", s.k), [=](const Kernels& k) {
        Rng r{uint64_t(s.tokens * 31 + s.experts + int(dt) * 1000)};
        T x = random(r, dt, {s.tokens, 64}), router = random(r, dt, {s.tokens, s.experts}, -3, 3);
        T w13 = random(r, dt, {s.experts, 96, 64}, -0.2f, 0.2f), w2 = random(r, dt, {s.experts, 64, 48}, -0.2f, 0.2f);
        T out(dt, {s.tokens, 64});
        check_fused_moe(out.v, x.v, router.v, w13.v, w2.v, double(s.k), s.k == 2);
        k.fused_moe(out.v, x.v, router.v, w13.v, w2.v, double(s.k), s.k == 2);
        return Outputs{{"out", std::move(out)}};
      });
      // quantised experts only where each expert's GEMM dequantises to fp32: under the integer GEMV the first layer's
      // level-to-level fp32 differences can move the second layer's 8-bit rounding of its input by a step, which is
      // the kernel's contract (quantLinear's own cases check every level there)
      if (s.tokens * s.k / s.experts <= 16) continue;
      for (int type : {kQ4_0, kQ8_0, kQ4_K, kQ6_K})
        add(str("quantFusedMoe, quantFusedMoePacked ", dn(dt), " type ", type, " ", s.tokens, " tokens, ", s.experts,
                " experts top ", s.k),
            [=](const Kernels& k) {
              Rng r{uint64_t(s.tokens * 37 + s.experts + type * 100 + int(dt) * 1000)};
              T x = random(r, dt, {s.tokens, 256}), router = random(r, dt, {s.tokens, s.experts}, -3, 3);
              T w13 = random_quant(r, type, s.experts * 2 * 256, 256), w2 = random_quant(r, type, s.experts * 256, 256);
              T out(dt, {s.tokens, 256});
              check_quant_fused_moe(out.v, x.v, router.v, w13.v, w2.v, double(type), double(type), double(s.k), true);
              k.quant_fused_moe(out.v, x.v, router.v, w13.v, w2.v, double(type), double(type), double(s.k), true);
              // the same experts interleaved by 8 rows
              T p13(DType::Int32, {w13.v.size(0), w13.v.size(1)}), p2(DType::Int32, {w2.v.size(0), w2.v.size(1)});
              T packed_out(dt, {s.tokens, 256});
              k.pack_quant_weight(p13.v, w13.v, double(type));
              k.pack_quant_weight(p2.v, w2.v, double(type));
              check_quant_fused_moe_packed(packed_out.v, x.v, router.v, p13.v, p2.v, double(type), double(type),
                                           double(s.k), true);
              k.quant_fused_moe_packed(packed_out.v, x.v, router.v, p13.v, p2.v, double(type), double(type),
                                       double(s.k), true);
              return Outputs{{"out", std::move(out)}, {"packed", std::move(packed_out)}};
            });
    }
}

void sampling_cases() {
  for (int64_t vocab : {1, 7, 100, 5000})
    add(str("sampleRows vocab ", vocab), [=](const Kernels& k) {
      Rng r{uint64_t(vocab)};
      const int64_t rows = 6;
      std::vector<float> logits(size_t(rows * vocab)), temp(rows), top_p(rows), min_p(rows);
      std::vector<int32_t> top_k(rows);
      std::vector<double> u(rows);
      for (float& l : logits) l = r.uniform(-8, 8);
      for (int64_t i = 0; i < rows; ++i) {
        temp[size_t(i)] = i == 0 ? 0.f : r.uniform(0.3f, 1.5f);
        top_k[size_t(i)] = i == 2 ? 5 : 0;
        top_p[size_t(i)] = i == 3 ? 0.9f : 1.f;
        min_p[size_t(i)] = i == 4 ? 0.05f : 0.f;
        u[size_t(i)] = double(r.uniform(0, 1));
      }
      T out(DType::Int32, {rows});
      SampleRowsParams p;
      p.temperature = {temp.data(), rows};
      p.top_k = {top_k.data(), rows};
      p.top_p = {top_p.data(), rows};
      p.min_p = {min_p.data(), rows};
      p.uniform = {u.data(), rows};
      const HostArray<const float> lg{logits.data(), rows * vocab};
      const HostArray<int32_t> o{out.i32(), rows};
      check_sample_rows(lg, double(rows), double(vocab), p, o);
      k.sample_rows(lg, double(rows), double(vocab), p, o);
      return Outputs{{"tokens", std::move(out)}};
    });
  for (DType dt : kFloats)
    for (int64_t vocab : {33, 1000})
      add(str("applyTokenBitmask ", dn(dt), " vocab ", vocab), [=](const Kernels& k) {
        Rng r{uint64_t(vocab) + uint64_t(dt)};
        const int64_t words = (vocab + 31) / 32;
        T logits = random(r, dt, {4, vocab}), mask(DType::Int32, {2, words}), rows(DType::Int32, {2});
        for (int64_t i = 0; i < 2 * words; ++i)
          mask.i32()[i] = i % 3 == 0 ? -1 : int32_t(uint32_t(r.below(1 << 16)) | uint32_t(r.below(1 << 16)) << 16);
        rows.i32()[0] = 3, rows.i32()[1] = 1;
        check_apply_token_bitmask(logits.v, mask.v, rows.v);
        k.apply_token_bitmask(logits.v, mask.v, rows.v);
        return Outputs{{"logits", std::move(logits)}};
      });
}

}  // namespace

int main(int argc, char** argv) {
  std::string require, only;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--require" && i + 1 < argc)
      require = argv[++i];
    else if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    else if (a == "--verbose")
      verbose = true;
    else {
      std::fprintf(stderr, "usage: %s [--require <level>] [--only <substring>] [--verbose]\n", argv[0]);
      return 2;
    }
  }
  const std::vector<const Kernels*>& levels = cpu::runnable_levels();  // best first; the baseline is last
  std::string built;
  for (const char* b : cpu::built_levels()) built += str(built.empty() ? "" : ", ", b);
  std::string runs;
  for (const Kernels* k : levels) runs += str(runs.empty() ? "" : ", ", k->isa);
  std::fprintf(stderr, "mvllm_cpu_check: this build holds %s; this machine runs %s\n", built.c_str(), runs.c_str());
  const Kernels& base = *levels.back();
  bool required_found = require.empty();
  for (const Kernels* k : levels) required_found |= require == k->isa;
  if (!required_found) {
    std::fprintf(stderr, "mvllm_cpu_check: level '%s' is not one this build holds and this machine runs\n",
                 require.c_str());
    std::printf("0 passed, 1 failed\n");
    return 1;
  }
  cpu::set_num_threads(2);  // the parallel paths, on any machine

  norm_cases();
  rope_cases();
  elementwise_cases();
  attention_cases();
  linear_cases();
  quant_cases();
  moe_cases();
  sampling_cases();

  int passed = 0, failed = 0;
  // every op of the list has a case (a new op without one fails here, not silently)
#define MVLLM_CHECK_COVERED(js_name, ...)                                                       \
  if (std::none_of(g_cases.begin(), g_cases.end(),                                              \
                   [](const Case& c) { return c.name.find(#js_name) != std::string::npos; })) { \
    ++failed;                                                                                   \
    std::printf("FAIL no case runs %s: add one to test/cpu-levels/check.cc\n", #js_name);       \
  }
  MVLLM_FOR_EACH_OP(MVLLM_CHECK_COVERED)
#undef MVLLM_CHECK_COVERED
  for (const Kernels* level : levels) {
    if (level == &base) continue;
    if (!require.empty() && require != level->isa) continue;
    for (const Case& c : g_cases) {
      if (!only.empty() && c.name.find(only) == std::string::npos) continue;
      Result res;
      try {
        Outputs want = c.run(base), got = c.run(*level);
        if (want.size() != got.size()) res = {false, "the levels returned different numbers of outputs"};
        for (size_t i = 0; i < want.size() && i < got.size(); ++i)
          compare(want[i].first.c_str(), want[i].second, got[i].second, res);
      } catch (const std::exception& e) {
        res = {false, str("threw: ", e.what())};
      }
      if (res.ok) {
        ++passed;
        if (verbose) std::printf("ok   %s vs %s: %s\n", level->isa, base.isa, c.name.c_str());
      } else {
        ++failed;
        std::printf("FAIL %s vs %s: %s: %s\n", level->isa, base.isa, c.name.c_str(), res.detail.c_str());
      }
    }
  }
  if (passed + failed == 0) std::fprintf(stderr, "mvllm_cpu_check: no level above %s to compare\n", base.isa);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
