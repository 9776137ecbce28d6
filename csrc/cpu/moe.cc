// Mixture of Experts on the CPU: route each token (softmax over the router logits, its top k, renormalised where
// asked), group the (token, expert) pairs by expert (a counting sort), and run each expert that has pairs once over
// all of its tokens with the linear kernels (gate/up, SiLU-and-mul, down: a GEMV for a few tokens, the GEMM for many,
// so each expert's weights stream once a step), then add each result, times its routing weight, into its token's
// fp32 sum. The sum is rounded to out's dtype once.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/op_checks.h"
#include "dispatch.h"
#include "kernels.h"
#include "level.h"
#include "parallel.h"
#include "vec.h"

namespace mvllm::cpu {
inline namespace MVLLM_CPU_LEVEL {
namespace {

// The pairs of a step, grouped by expert: pairs start[e] .. start[e + 1] of `order` are expert e's, each a token id
// and its routing weight.
struct Routing {
  std::vector<int32_t> expert;  // [tokens * k]: the pair's expert (pair = token * k + j)
  std::vector<float> weight;    // [tokens * k]
  std::vector<int64_t> start;   // [experts + 1]
  std::vector<int32_t> order;   // [tokens * k]: pair ids by expert, tokens ascending within one
};

// Softmax in fp32, the k largest probabilities (the lower expert id first among equal ones), renormalised to sum 1
// where asked.
template <typename T>
void route(const TensorView& router, int64_t k, bool renormalize, Routing& r) {
  const int64_t tokens = router.size(0), experts = router.size(1);
  r.expert.resize(size_t(tokens * k));
  r.weight.resize(size_t(tokens * k));
  parallel_for(tokens, 64, [&](int64_t t0, int64_t t1) {
    float p[kMoeMaxExperts];
    for (int64_t t = t0; t < t1; ++t) {
      const T* row = router.ptr<T>() + t * router.stride(0);
      float max = -INFINITY, sum = 0.f;
      for (int64_t e = 0; e < experts; ++e) max = std::max(max, to_float(row[e]));
      for (int64_t e = 0; e < experts; ++e) sum += p[e] = std::exp(to_float(row[e]) - max);
      float picked = 0.f;
      for (int64_t j = 0; j < k; ++j) {
        int64_t best = -1;
        for (int64_t e = 0; e < experts; ++e)
          if (p[e] >= 0.f && (best < 0 || p[e] > p[best])) best = e;
        r.expert[size_t(t * k + j)] = int32_t(best);
        r.weight[size_t(t * k + j)] = p[best] / sum;
        picked += p[best] / sum;
        p[best] = -1.f;  // taken
      }
      if (renormalize)
        for (int64_t j = 0; j < k; ++j) r.weight[size_t(t * k + j)] /= picked;
    }
  });
  r.start.assign(size_t(experts + 1), 0);
  for (const int32_t e : r.expert) ++r.start[size_t(e) + 1];
  for (int64_t e = 0; e < experts; ++e) r.start[size_t(e + 1)] += r.start[size_t(e)];
  r.order.resize(size_t(tokens * k));
  std::vector<int64_t> next(r.start.begin(), r.start.end() - 1);
  for (int64_t pair = 0; pair < tokens * k; ++pair)
    r.order[size_t(next[size_t(r.expert[size_t(pair)])]++)] = int32_t(pair);
}

TensorView matrix(void* data, DType dtype, int64_t rows, int64_t cols) {
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.ndim = 2;
  v.shape[0] = rows;
  v.shape[1] = cols;
  v.strides[0] = cols;
  v.strides[1] = 1;
  return v;
}

struct Scratch {
  Routing routing;
  std::vector<float> sum;
  std::vector<char> xe, h13, act, ye;
};
inline thread_local Scratch tl_moe;

// The experts' pass over the routed pairs. gate_up(e, out [n, 2I], x [n, H]) and down(e, out [n, H], x [n, I]) run
// expert e's two linear layers.
template <typename TA, typename GateUp, typename Down>
void experts(const TensorView& out, const TensorView& x, const TensorView& router, int64_t k, bool renormalize,
             int64_t inter, const GateUp& gate_up, const Down& down) {
  Scratch& s = tl_moe;
  MVLLM_CPU_DISPATCH_FLOAT(router.dtype, TR, route<TR>(router, k, renormalize, s.routing));
  const Routing& r = s.routing;
  const int64_t tokens = x.size(0), hidden = x.size(1), experts = router.size(1);
  s.sum.assign(size_t(tokens * hidden), 0.f);
  const DType dt = x.dtype;
  const size_t item = sizeof(TA);
  for (int64_t e = 0; e < experts; ++e) {
    const int64_t first = r.start[size_t(e)], n = r.start[size_t(e + 1)] - first;
    if (n == 0) continue;
    s.xe.resize(size_t(n * hidden) * item);
    s.h13.resize(size_t(n * 2 * inter) * item);
    s.act.resize(size_t(n * inter) * item);
    s.ye.resize(size_t(n * hidden) * item);
    TA* xe = reinterpret_cast<TA*>(s.xe.data());
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(xe + i * hidden, x.ptr<TA>() + (r.order[size_t(first + i)] / k) * x.stride(0), size_t(hidden) * item);
    const TensorView xv = matrix(s.xe.data(), dt, n, hidden), h13 = matrix(s.h13.data(), dt, n, 2 * inter),
                     act = matrix(s.act.data(), dt, n, inter), ye = matrix(s.ye.data(), dt, n, hidden);
    gate_up(e, h13, xv);
    silu_and_mul(act, h13);
    down(e, ye, act);
    // a token picks an expert once: the rows of one expert add into distinct sums
    const TA* y = reinterpret_cast<const TA*>(s.ye.data());
    parallel_for(n, std::max<int64_t>(1, 16384 / hidden), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int32_t pair = r.order[size_t(first + i)];
        const float w = r.weight[size_t(pair)];
        float* acc = s.sum.data() + (pair / k) * hidden;
        const TA* yr = y + i * hidden;
        for (int64_t c = 0; c < hidden; ++c) acc[c] += w * to_float(yr[c]);
      }
    });
  }
  parallel_for(tokens, std::max<int64_t>(1, 16384 / hidden), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      TA* o = out.ptr<TA>() + t * out.stride(0);
      const float* acc = s.sum.data() + t * hidden;
      for (int64_t c = 0; c < hidden; ++c) o[c] = from_float<TA>(acc[c]);
    }
  });
}

// Rows [row, row + rows) of a dense 2-D (or the experts' 3-D) weight, as a 2-D view.
TensorView rows_of(const TensorView& w, int64_t row, int64_t rows, int64_t cols) {
  return matrix(static_cast<char*>(w.data) + row * cols * int64_t(w.itemsize()), w.dtype, rows, cols);
}

// The quantised experts' pass: `linear` is quantLinear's or quantLinearPacked's kernel, run on each expert's rows.
using QuantLinear = void (*)(const TensorView&, const TensorView&, const TensorView&, double, const MaybeTensor&);
void quant_experts(QuantLinear linear, const TensorView& out, const TensorView& x, const TensorView& router,
                   const TensorView& w13, const TensorView& w2, double type13, double type2, double top_k,
                   bool renormalize) {
  const int64_t hidden = x.size(1), inter = w13.size(0) / (2 * router.size(1));
  const MaybeTensor none{};
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, TA,
                           experts<TA>(
                               out, x, router, int64_t(top_k), renormalize, inter,
                               [&](int64_t e, const TensorView& o, const TensorView& xe) {
                                 linear(o, xe, rows_of(w13, e * 2 * inter, 2 * inter, w13.size(1)), type13, none);
                               },
                               [&](int64_t e, const TensorView& o, const TensorView& a) {
                                 linear(o, a, rows_of(w2, e * hidden, hidden, w2.size(1)), type2, none);
                               }));
}

}  // namespace

void fused_moe(const TensorView& out, const TensorView& x, const TensorView& router, const TensorView& w13,
               const TensorView& w2, double top_k, bool renormalize) {
  const int64_t inter = w2.size(2), hidden = x.size(1);
  const MaybeTensor none{};
  MVLLM_CPU_DISPATCH_FLOAT(x.dtype, TA,
                           experts<TA>(
                               out, x, router, int64_t(top_k), renormalize, inter,
                               [&](int64_t e, const TensorView& o, const TensorView& xe) {
                                 linear(o, xe, rows_of(w13, e * 2 * inter, 2 * inter, hidden), none);
                               },
                               [&](int64_t e, const TensorView& o, const TensorView& a) {
                                 linear(o, a, rows_of(w2, e * hidden, hidden, inter), none);
                               }));
}

void quant_fused_moe(const TensorView& out, const TensorView& x, const TensorView& router, const TensorView& w13,
                     const TensorView& w2, double type13, double type2, double top_k, bool renormalize) {
  quant_experts(quant_linear, out, x, router, w13, w2, type13, type2, top_k, renormalize);
}

// An expert's rows are whole groups of 8, so its slice of the interleaved stack is its own interleaved matrix.
void quant_fused_moe_packed(const TensorView& out, const TensorView& x, const TensorView& router, const TensorView& w13,
                            const TensorView& w2, double type13, double type2, double top_k, bool renormalize) {
  quant_experts(quant_linear_packed, out, x, router, w13, w2, type13, type2, top_k, renormalize);
}

}  // namespace MVLLM_CPU_LEVEL
}  // namespace mvllm::cpu
