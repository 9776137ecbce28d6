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

/** Where weight[n][k] sits in the packed layout: panel n / 16, row k, lane n % 16. */
const packedIndex = (n: number, k: number, inFeatures: number) => (Math.floor(n / 16) * inFeatures + k) * 16 + (n % 16);

/** packed[p][k][j] = weight[16p + j][k] (0 past outFeatures): the layout packLinearWeight writes. */
export function packLinearWeight(weight: ArrayLike<number>, outFeatures: number, inFeatures: number): Float64Array {
  const panels = Math.ceil(outFeatures / 16);
  const packed = new Float64Array(panels * inFeatures * 16);
  for (let n = 0; n < outFeatures; ++n)
    for (let k = 0; k < inFeatures; ++k) packed[packedIndex(n, k, inFeatures)] = weight[n * inFeatures + k]!;
  return packed;
}

/** linear() with the weight read from its packed layout. */
export function linearPacked(
  x: ArrayLike<number>,
  packed: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  numTokens: number,
  outFeatures: number,
  inFeatures: number,
  dtype: FloatDType,
): Float64Array {
  const weight = new Float64Array(outFeatures * inFeatures);
  for (let n = 0; n < outFeatures; ++n)
    for (let k = 0; k < inFeatures; ++k) weight[n * inFeatures + k] = packed[packedIndex(n, k, inFeatures)]!;
  return linear(x, weight, bias, numTokens, outFeatures, inFeatures, dtype);
}
