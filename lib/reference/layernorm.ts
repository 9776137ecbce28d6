// Reference RMSNorm: float64 sums, rounding where the kernels round. Written to be read, not to be fast.
import type { FloatDType } from '../dtype.js';
import { roundTo } from './dtype.js';

/** out[t, i] = round(round(x[t, i] / rms(x[t])) * weight[i]), rms = sqrt(mean(x[t]²) + eps). */
export function rmsNorm(
  x: ArrayLike<number>, // [numTokens, hidden]
  weight: ArrayLike<number>, // [hidden]
  numTokens: number,
  hidden: number,
  eps: number,
  dtype: FloatDType,
): Float64Array {
  const out = new Float64Array(numTokens * hidden);
  for (let t = 0; t < numTokens; ++t) {
    let sumSquares = 0;
    for (let i = 0; i < hidden; ++i) sumSquares += x[t * hidden + i]! ** 2;
    const inv = 1 / Math.sqrt(sumSquares / hidden + eps);
    for (let i = 0; i < hidden; ++i) {
      const normalised = roundTo(x[t * hidden + i]! * inv, dtype);
      out[t * hidden + i] = roundTo(normalised * weight[i]!, dtype);
    }
  }
  return out;
}

/** residual' = round(x + residual); x' = rmsNorm(residual'). Returns both new values. */
export function fusedAddRmsNorm(
  x: ArrayLike<number>, // [numTokens, hidden]
  residual: ArrayLike<number>, // [numTokens, hidden]
  weight: ArrayLike<number>, // [hidden]
  numTokens: number,
  hidden: number,
  eps: number,
  dtype: FloatDType,
): { x: Float64Array; residual: Float64Array } {
  const sum = new Float64Array(numTokens * hidden);
  for (let i = 0; i < sum.length; ++i) sum[i] = roundTo(x[i]! + residual[i]!, dtype);
  return { x: rmsNorm(sum, weight, numTokens, hidden, eps, dtype), residual: sum };
}

/** rmsNorm of every head of every token: x [numTokens, numHeads, headDim] read as numTokens·numHeads rows. */
export function rmsNormHeads(
  x: ArrayLike<number>, // [numTokens, numHeads, headDim]
  weight: ArrayLike<number>, // [headDim]
  numTokens: number,
  numHeads: number,
  headDim: number,
  eps: number,
  dtype: FloatDType,
): Float64Array {
  return rmsNorm(x, weight, numTokens * numHeads, headDim, eps, dtype);
}
