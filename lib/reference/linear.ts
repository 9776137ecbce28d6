// Reference linear layer.
import type { FloatDType } from '../dtype.js';
import { roundTo } from './dtype.js';

/** out[m, n] = round(Σ_k x[m, k] · weight[n, k] + bias[n]) for x [numTokens, inF], weight [outF, inF]. */
export function linear(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  numTokens: number,
  outFeatures: number,
  inFeatures: number,
  dtype: FloatDType,
): Float64Array {
  const out = new Float64Array(numTokens * outFeatures);
  for (let m = 0; m < numTokens; ++m) {
    for (let n = 0; n < outFeatures; ++n) {
      let acc = bias ? bias[n]! : 0;
      for (let k = 0; k < inFeatures; ++k) acc += x[m * inFeatures + k]! * weight[n * inFeatures + k]!;
      out[m * outFeatures + n] = roundTo(acc, dtype);
    }
  }
  return out;
}
