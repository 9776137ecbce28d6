// Rounding of a float64 value to each storage dtype: round-to-nearest-even, overflow to ±Infinity, NaN kept.
import type { FloatDType } from '../dtype.js';

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Rounds x to a binary float with `mantissa` explicit bits, smallest normal exponent `minExp`, max `maxExp`. */
function roundToFormat(x: number, mantissa: number, minExp: number, maxExp: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1; // log2 can be off by one near powers of two
  if (2 ** (e + 1) <= a) e += 1;
  const ulp = 2 ** (Math.max(e, minExp) - mantissa); // below minExp: subnormal spacing
  const r = roundHalfEven(a / ulp) * ulp;
  const max = (2 - 2 ** -mantissa) * 2 ** maxExp;
  const out = r > max ? Infinity : r;
  return x < 0 ? -out : out;
}

export function roundFloat16(x: number): number {
  return roundToFormat(x, 10, -14, 15);
}

export function roundBFloat16(x: number): number {
  return roundToFormat(x, 7, -126, 127);
}

/** x as `dtype` would store it. */
export function roundTo(x: number, dtype: FloatDType): number {
  switch (dtype) {
    case 'float32':
      return Math.fround(x);
    case 'float16':
      return roundFloat16(x);
    case 'bfloat16':
      return roundBFloat16(x);
  }
}

/** Every element rounded to `dtype`, as a new Float64Array. */
export function roundArray(data: ArrayLike<number>, dtype: FloatDType): Float64Array {
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; ++i) out[i] = roundTo(data[i]!, dtype);
  return out;
}
