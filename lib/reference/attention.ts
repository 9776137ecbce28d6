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
}

/**
 * out[t, h] = Σ_p softmax_p(q[t, h] · K[p] · scale) V[p] over positions p <= pos(t) of t's sequence, K/V of
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
        for (let p = 0; p <= pos; ++p) {
          let dot = 0;
          const k = at(p, kh);
          for (let i = 0; i < headSize; ++i) dot += query[q + i]! * keyCache[k + i]!;
          scores[p] = dot * meta.scale;
          max = Math.max(max, scores[p]!);
        }
        let sum = 0;
        for (let p = 0; p <= pos; ++p) {
          scores[p] = Math.exp(scores[p]! - max);
          sum += scores[p]!;
        }
        for (let i = 0; i < headSize; ++i) {
          let acc = 0;
          for (let p = 0; p <= pos; ++p) acc += scores[p]! * valueCache[at(p, kh) + i]!;
          out[q + i] = roundTo(acc / sum, dtype);
        }
      }
    }
  }
  return out;
}
