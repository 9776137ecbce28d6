// Reference elementwise maps: scale and the soft cap, in float64, rounded to the dtype.
import type { FloatDType } from '../dtype.js';
import { roundTo } from './dtype.js';

export function scale(x: ArrayLike<number>, factor: number, dtype: FloatDType): Float64Array {
  return Float64Array.from(x, (v) => roundTo(v * factor, dtype));
}

export function softCap(x: ArrayLike<number>, cap: number, dtype: FloatDType): Float64Array {
  return Float64Array.from(x, (v) => roundTo(cap * Math.tanh(v / cap), dtype));
}
