// Reference rotary embedding. The cos/sin table it reads is computed by lib/rope.ts (shared with the op and the model).
import type { FloatDType } from '../dtype.js';
import { roundTo } from './dtype.js';

export { ropeCosSin, ropeInvFreq, type RopeScaling } from '../rope.js';

/**
 * Rotates, per token and head, the pairs (x, y) of the first rotaryDim elements:
 *   x' = x·cos − y·sin,  y' = y·cos + x·sin,
 * NeoX pairs (i, i + rotaryDim/2), GPT-J pairs (2i, 2i + 1). The result is rounded to `dtype`.
 * Returns new query and key arrays; elements past rotaryDim are copied unchanged.
 */
export function rotaryEmbedding(
  positions: ArrayLike<number>, // [numTokens]
  query: ArrayLike<number>, // [numTokens, numHeads * headSize]
  key: ArrayLike<number> | null, // [numTokens, numKvHeads * headSize]
  headSize: number,
  cosSinCache: ArrayLike<number>, // [maxPosition, rotaryDim]
  rotaryDim: number,
  isNeox: boolean,
  dtype: FloatDType,
): { query: Float64Array; key: Float64Array | null } {
  const numTokens = positions.length;
  const half = rotaryDim / 2;
  const rotate = (src: ArrayLike<number>): Float64Array => {
    const out = Float64Array.from(src);
    const width = src.length / numTokens;
    for (let t = 0; t < numTokens; ++t) {
      const row = positions[t]! * rotaryDim;
      for (let h = 0; h < width / headSize; ++h) {
        const base = t * width + h * headSize;
        for (let i = 0; i < half; ++i) {
          const xi = base + (isNeox ? i : 2 * i);
          const yi = base + (isNeox ? half + i : 2 * i + 1);
          const cos = cosSinCache[row + i]!;
          const sin = cosSinCache[row + half + i]!;
          const x = src[xi]!;
          const y = src[yi]!;
          out[xi] = roundTo(x * cos - y * sin, dtype);
          out[yi] = roundTo(y * cos + x * sin, dtype);
        }
      }
    }
    return out;
  };
  return { query: rotate(query), key: key ? rotate(key) : null };
}
