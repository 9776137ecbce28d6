// Reference elementwise add.
import type { FloatDType } from '../dtype.js';
import { roundTo } from './dtype.js';

/** out = round(a + b) */
export function add(a: ArrayLike<number>, b: ArrayLike<number>, dtype: FloatDType): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; ++i) out[i] = roundTo(a[i]! + b[i]!, dtype);
  return out;
}
