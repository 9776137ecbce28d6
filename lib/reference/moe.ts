// Reference Mixture of Experts: routing in float64 and each routed expert's MLP token by token, in the dtype's
// rounding steps (linear, then siluAndMul), the weighted sum rounded once; quantised experts dequantised first.
import type { FloatDType } from '../dtype.js';
import { siluAndMul } from './activation.js';
import { roundTo } from './dtype.js';
import { linear } from './linear.js';
import { dequantizeWords } from './quant.js';

export interface MoeRouting {
  /** [numTokens * topK]: each token's experts, most probable first (the lower id among equal ones). */
  experts: Int32Array;
  /** [numTokens * topK]: their weights (softmax probabilities, divided by their sum where renormalised). */
  weights: Float64Array;
}

/** softmax(routerLogits) per token, its topK experts and their weights. */
export function moeRoute(
  routerLogits: ArrayLike<number>,
  numTokens: number,
  numExperts: number,
  topK: number,
  renormalize: boolean,
): MoeRouting {
  const experts = new Int32Array(numTokens * topK);
  const weights = new Float64Array(numTokens * topK);
  for (let t = 0; t < numTokens; ++t) {
    const row = Array.from({ length: numExperts }, (_, e) => routerLogits[t * numExperts + e]!);
    const max = Math.max(...row);
    const p = row.map((v) => Math.exp(v - max));
    const sum = p.reduce((a, b) => a + b, 0);
    const order = p.map((v, e) => [v, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    let picked = 0;
    for (let j = 0; j < topK; ++j) {
      experts[t * topK + j] = order[j]![1];
      picked += weights[t * topK + j] = order[j]![0] / sum;
    }
    if (renormalize) for (let j = 0; j < topK; ++j) weights[t * topK + j]! /= picked;
  }
  return { experts, weights };
}

/**
 * out [numTokens, hidden] for x [numTokens, hidden], w13 [numExperts, 2 intermediate, hidden] (gate rows, then up
 * rows), w2 [numExperts, hidden, intermediate] (fusedMoe's contract).
 */
export function fusedMoe(
  x: ArrayLike<number>,
  routerLogits: ArrayLike<number>,
  w13: ArrayLike<number>,
  w2: ArrayLike<number>,
  shape: { numTokens: number; hidden: number; intermediate: number; numExperts: number },
  topK: number,
  renormalize: boolean,
  dtype: FloatDType,
  /**
   * What expert e's linear layers see of their input (the CPU's integer GEMV, for an expert with a few tokens, rounds
   * it to 8 bits a block).
   */
  input: (row: Float64Array, e: number) => ArrayLike<number> = (row) => row,
): Float64Array {
  const { numTokens: T, hidden: H, intermediate: I, numExperts: E } = shape;
  const { experts, weights } = moeRoute(routerLogits, T, E, topK, renormalize);
  const sum = new Float64Array(T * H);
  for (let t = 0; t < T; ++t) {
    const xt = Float64Array.from({ length: H }, (_, c) => x[t * H + c]!);
    for (let j = 0; j < topK; ++j) {
      const e = experts[t * topK + j]!;
      const gateUp = linear(input(xt, e), sub(w13, e * 2 * I * H, 2 * I * H), null, 1, 2 * I, H, dtype);
      const act = siluAndMul(gateUp, 1, I, dtype);
      const y = linear(input(act, e), sub(w2, e * H * I, H * I), null, 1, H, I, dtype);
      for (let c = 0; c < H; ++c) sum[t * H + c]! += weights[t * topK + j]! * y[c]!;
    }
  }
  return sum.map((v) => roundTo(v, dtype));
}

function sub(a: ArrayLike<number>, from: number, n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => a[from + i]!);
}

/** quantFusedMoe: the experts' words (ggml type ids `type13`, `type2`) dequantised, then fusedMoe. */
export function quantFusedMoe(
  x: ArrayLike<number>,
  routerLogits: ArrayLike<number>,
  w13: Int32Array,
  w2: Int32Array,
  shape: { numTokens: number; hidden: number; intermediate: number; numExperts: number },
  type13: number,
  type2: number,
  topK: number,
  renormalize: boolean,
  dtype: FloatDType,
  input?: (row: Float64Array, e: number) => ArrayLike<number>,
): Float64Array {
  const { hidden: H, intermediate: I, numExperts: E } = shape;
  const w13f = dequantizeWords(w13, E * 2 * I, H, type13);
  const w2f = dequantizeWords(w2, E * H, I, type2);
  return fusedMoe(x, routerLogits, w13f, w2f, shape, topK, renormalize, dtype, input);
}

/**
 * quantFusedMoePacked: the same as quantFusedMoe over the words the experts had before packQuantWeight interleaved
 * them (the packed layout is a reordering: reference/quant.ts holds it bit by bit).
 */
export function quantFusedMoePacked(...args: Parameters<typeof quantFusedMoe>): Float64Array {
  return quantFusedMoe(...args);
}
