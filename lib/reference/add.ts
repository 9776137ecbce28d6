// Reference elementwise add.
import type { FloatDType } from '../dtype.js';
import { roundTo } from './dtype.js';

/** out[t] = round(a[t] + sigmoid(gate[t]) · b[t]): rows of `hidden` */
export function sigmoidGatedAdd(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  gate: ArrayLike<number>,
  hidden: number,
  dtype: FloatDType,
): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; ++i)
    out[i] = roundTo(a[i]! + b[i]! / (1 + Math.exp(-gate[Math.floor(i / hidden)]!)), dtype);
  return out;
}

/** out = round(a + b) */
export function add(a: ArrayLike<number>, b: ArrayLike<number>, dtype: FloatDType): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; ++i) out[i] = roundTo(a[i]! + b[i]!, dtype);
  return out;
}
