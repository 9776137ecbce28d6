// The contract of the Mixture-of-Experts ops (fusedMoe, quantFusedMoe), checked once for both backends: op_checks.h
// includes it before its op list.
#pragma once

#include <algorithm>

#include "check.h"
#include "quant_checks.h"

namespace mvllm {

constexpr int64_t kMoeMaxExperts = 256;
constexpr int64_t kMoeMaxTopK = 32;

// What both MoE ops share: out, x [numTokens, hidden] (x's float dtype, rows may be strided; out may be x);
// routerLogits
// [numTokens, numExperts] of any float dtype; topK an integer in [1, min(numExperts, 32)]. Returns numExperts.
inline int64_t check_moe_common(const Check& c, const char* op, const TensorView& out, const TensorView& x,
                                const TensorView& router, double top_k) {
  c.float_dtype(x, "x");
  c.same_dtype(out, "out", x, "x");
  c.float_dtype(router, "routerLogits");
  c.same_device(out, "out", x, "x");
  c.same_device(router, "routerLogits", x, "x");
  c.ndim(x, "x", 2, "[numTokens, hidden]");
  c.ndim(out, "out", 2, "[numTokens, hidden]");
  c.ndim(router, "routerLogits", 2, "[numTokens, numExperts]");
  c.dim(out, "out", 0, x.size(0), "numTokens of x");
  c.dim(out, "out", 1, x.size(1), "hidden of x");
  c.dim(router, "routerLogits", 0, x.size(0), "numTokens of x");
  c.rows_dense(out, "out");
  c.rows_dense(x, "x");
  c.rows_dense(router, "routerLogits");
  c.same_or_distinct(out, "out", x, "x");  // in place is fine: out is written after every read of x
  c.distinct(out, "out", router, "routerLogits");
  const int64_t experts = router.size(1);
  if (experts < 1 || experts > kMoeMaxExperts)
    fail(ErrorKind::Range, op, ": numExperts (routerLogits dim 1) must be in [1, ", kMoeMaxExperts, "], got ", experts);
  if (top_k != double(int64_t(top_k)) || top_k < 1 || top_k > double(std::min(experts, kMoeMaxTopK)))
    fail(ErrorKind::Range, op, ": topK must be an integer in [1, ", std::min(experts, kMoeMaxTopK), "], got ", top_k);
  return experts;
}

// out = Σ over each token's topK experts e of weight_e · w2[e] · (silu(w13[e] gate rows · x) ⊙ (w13[e] up rows · x)):
// w13 [numExperts, 2 * intermediate, hidden] (each expert's gate rows, then its up rows), w2 [numExperts, hidden,
// intermediate], both dense and of one float dtype (any: converted in registers).
inline void check_fused_moe(const TensorView& out, const TensorView& x, const TensorView& router, const TensorView& w13,
                            const TensorView& w2, double top_k, bool renormalize) {
  (void)renormalize;
  const Check c("fusedMoe");
  const int64_t experts = check_moe_common(c, "fusedMoe", out, x, router, top_k);
  c.float_dtype(w13, "w13");
  c.same_dtype(w2, "w2", w13, "w13");
  c.same_device(w13, "w13", x, "x");
  c.same_device(w2, "w2", x, "x");
  c.ndim(w13, "w13", 3, "[numExperts, 2 * intermediate, hidden]");
  c.ndim(w2, "w2", 3, "[numExperts, hidden, intermediate]");
  c.dim(w13, "w13", 0, experts, "numExperts of routerLogits");
  c.dim(w13, "w13", 2, x.size(1), "hidden of x");
  if (w13.size(1) % 2 != 0 || w13.size(1) < 2)
    fail(ErrorKind::Range, "fusedMoe: w13 dim 1 must be 2 * intermediate (even, positive), got ", w13.size(1));
  c.dim(w2, "w2", 0, experts, "numExperts of routerLogits");
  c.dim(w2, "w2", 1, x.size(1), "hidden of x");
  c.dim(w2, "w2", 2, w13.size(1) / 2, "intermediate of w13");
  c.contiguous(w13, "w13");
  c.contiguous(w2, "w2");
}

// fusedMoe with quantised experts: w13 int32 [numExperts * 2 * intermediate, rowWords] (expert e's gate rows, then its
// up rows, from row e * 2 * intermediate) of ggml type `type13`, w2 int32 [numExperts * hidden, rowWords] of `type2`
// (check_quant_weight; llama.cpp's Q4_K_M files keep the down experts in Q6_K on some layers): hidden a multiple of
// type13's block, intermediate of type2's.
inline void check_quant_moe_args(const char* op, const TensorView& out, const TensorView& x, const TensorView& router,
                                 const TensorView& w13, const TensorView& w2, double type13, double type2,
                                 double top_k) {
  const Check c(op);
  const int64_t experts = check_moe_common(c, op, out, x, router, top_k);
  c.same_device(w13, "w13", x, "x");
  c.same_device(w2, "w2", x, "x");
  check_quant_weight(c, op, w13, "w13", type13, x.size(1), "hidden", "type13");
  if (w13.size(0) % (2 * experts) != 0 || w13.size(0) == 0)
    fail(ErrorKind::Range, op, ": w13 rows (", w13.size(0), ") must be numExperts (", experts, ") * 2 * intermediate");
  const int64_t inter = w13.size(0) / (2 * experts);
  check_quant_weight(c, op, w2, "w2", type2, inter, "intermediate", "type2");
  c.dim(w2, "w2", 0, experts * x.size(1), "numExperts * hidden");
}

inline void check_quant_fused_moe(const TensorView& out, const TensorView& x, const TensorView& router,
                                  const TensorView& w13, const TensorView& w2, double type13, double type2,
                                  double top_k, bool renormalize) {
  (void)renormalize;
  check_quant_moe_args("quantFusedMoe", out, x, router, w13, w2, type13, type2, top_k);
}

// quantFusedMoe over experts interleaved by 8 rows (packQuantWeight: the CPU's decode layout) of the types it
// interleaves (Q4_0, Q8_0, Q4_K, Q6_K). Each expert's rows (2 * intermediate, hidden: multiples of the types' blocks
// of 32 or 256) are whole groups of 8, so each expert's slice is its own interleaved matrix.
inline void check_quant_fused_moe_packed(const TensorView& out, const TensorView& x, const TensorView& router,
                                         const TensorView& w13, const TensorView& w2, double type13, double type2,
                                         double top_k, bool renormalize) {
  (void)renormalize;
  check_quant_moe_args("quantFusedMoePacked", out, x, router, w13, w2, type13, type2, top_k);
  const Check c("quantFusedMoePacked");
  check_interleaved(c, "quantFusedMoePacked", w13, "w13", type13);
  check_interleaved(c, "quantFusedMoePacked", w2, "w2", type2);
}

}  // namespace mvllm
