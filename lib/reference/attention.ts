// Reference paged attention: gather each sequence's K/V through its block table, then a plain causal softmax in
// float64. Written for reading, not speed.
import type { FloatDType } from '../dtype.js';
import type { CacheShape } from './cache.js';
import { roundTo } from './dtype.js';

export interface ReferenceAttentionMeta {
  queryStartLoc: ArrayLike<number>;
  seqLens: ArrayLike<number>;
  /** numSeqs rows of block ids */
  blockTables: ArrayLike<number>[];
  scale: number;
  /** > 0: position p sees keys p - slidingWindow + 1 .. p only */
  slidingWindow?: number;
  /** > 0: scores become cap · tanh(score / cap) */
  logitsSoftCap?: number;
}

/** What a bound on a kernel's error needs, per output element, from the exact computation. */
export interface AttentionTerms {
  /** The output before its rounding to dtype. */
  exact: Float64Array;
  /** Σ_p softmax_p · |V[p, i]|: what rounding the probabilities (or V) relative to u can move out[t, h, i] by, / u. */
  absWeighted: Float64Array;
  /** Per (token, head): max_p scale · Σ_i |q_i · K[p, i]|, what fp32 rounding of a score is relative to. */
  scoreMagnitude: Float64Array;
}

/**
 * out[t, h] = Σ_p softmax_p(cap(q[t, h] · K[p] · scale)) V[p] over positions p <= pos(t) of t's sequence (and past
 * pos(t) - slidingWindow where one is given; cap: logitsSoftCap · tanh(x / logitsSoftCap) where given), K/V of
 * KV head h / (numHeads / numKvHeads), rounded to dtype. Query and caches are flat arrays of what the tensors
 * hold.
 */
export function pagedAttention(
  query: ArrayLike<number>,
  keyCache: ArrayLike<number>,
  valueCache: ArrayLike<number>,
  meta: ReferenceAttentionMeta,
  numHeads: number,
  shape: CacheShape,
  dtype: FloatDType,
  terms?: AttentionTerms,
): Float64Array {
  const { blockSize, numKvHeads, headSize } = shape;
  const group = numHeads / numKvHeads;
  const numTokens = meta.queryStartLoc[meta.seqLens.length]!;
  const out = new Float64Array(numTokens * numHeads * headSize);
  for (let s = 0; s < meta.seqLens.length; ++s) {
    const start = meta.queryStartLoc[s]!;
    const qLen = meta.queryStartLoc[s + 1]! - start;
    const seqLen = meta.seqLens[s]!;
    const table = meta.blockTables[s]!;
    // the cache offset of position p, KV head kh
    const at = (p: number, kh: number): number =>
      ((table[Math.floor(p / blockSize)]! * blockSize + (p % blockSize)) * numKvHeads + kh) * headSize;
    for (let j = 0; j < qLen; ++j) {
      const pos = seqLen - qLen + j;
      const t = start + j;
      for (let h = 0; h < numHeads; ++h) {
        const kh = Math.floor(h / group);
        const q = (t * numHeads + h) * headSize;
        const scores = new Float64Array(pos + 1);
        let max = -Infinity;
        let magnitude = 0;
        const w = meta.slidingWindow ?? 0;
        const cap = meta.logitsSoftCap ?? 0;
        const first = w > 0 ? Math.max(0, pos - w + 1) : 0; // keys before it are not read
        for (let p = first; p <= pos; ++p) {
          let dot = 0;
          let abs = 0;
          const k = at(p, kh);
          for (let i = 0; i < headSize; ++i) {
            const product = query[q + i]! * keyCache[k + i]!;
            dot += product;
            abs += Math.abs(product);
          }
          scores[p] = cap > 0 ? cap * Math.tanh((dot * meta.scale) / cap) : dot * meta.scale;
          max = Math.max(max, scores[p]!);
          magnitude = Math.max(magnitude, abs * Math.abs(meta.scale));
        }
        if (terms) terms.scoreMagnitude[t * numHeads + h] = magnitude;
        let sum = 0;
        for (let p = first; p <= pos; ++p) {
          scores[p] = Math.exp(scores[p]! - max);
          sum += scores[p]!;
        }
        const acc = new Float64Array(headSize);
        const abs = new Float64Array(headSize);
        for (let p = first; p <= pos; ++p) {
          const v = at(p, kh);
          for (let i = 0; i < headSize; ++i) {
            acc[i]! += scores[p]! * valueCache[v + i]!;
            abs[i]! += scores[p]! * Math.abs(valueCache[v + i]!);
          }
        }
        for (let i = 0; i < headSize; ++i) {
          out[q + i] = roundTo(acc[i]! / sum, dtype);
          if (terms) {
            terms.exact[q + i] = acc[i]! / sum;
            terms.absWeighted[q + i] = abs[i]! / sum;
          }
        }
      }
    }
  }
  return out;
}
