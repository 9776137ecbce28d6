// Reference of ops.fillUniform: the counter-based generator of csrc/core/random.h, in 32-bit integer arithmetic.
import type { FloatDType } from '../dtype.js';
import { roundTo } from './dtype.js';

function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The value fillUniform writes at element i (i < 2^53) for this seed, before rounding to the storage dtype. */
export function uniformAt(seed: number, i: number, low: number, high: number): number {
  const hi = Math.floor(i / 2 ** 32) >>> 0;
  const h = lowbias32((i >>> 0) ^ lowbias32(hi ^ lowbias32(seed >>> 0)));
  const u = ((h >>> 8) + 0.5) / 16777216;
  const lo = Math.fround(low);
  return Math.fround(lo + (Math.fround(high) - lo) * u);
}

/** What fillUniform writes into n contiguous elements of `dtype`: element i is uniformAt(seed, i), rounded. */
export function fillUniform(n: number, low: number, high: number, seed: number, dtype: FloatDType): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; ++i) out[i] = roundTo(uniformAt(seed, i, low, high), dtype);
  return out;
}
