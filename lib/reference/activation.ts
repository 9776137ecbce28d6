// Reference gated activations: SiLU-and-multiply and GELU(tanh)-and-multiply.
import type { FloatDType } from '../dtype.js';
import { roundTo } from './dtype.js';

export function silu(g: number): number {
  return g / (1 + Math.exp(-g));
}

/** out[t, i] = round(round(silu(x[t, i])) * x[t, d + i]) for x [numTokens, 2d]. */
export function siluAndMul(x: ArrayLike<number>, numTokens: number, d: number, dtype: FloatDType): Float64Array {
  const out = new Float64Array(numTokens * d);
  for (let t = 0; t < numTokens; ++t) {
    for (let i = 0; i < d; ++i) {
      const gate = x[t * 2 * d + i]!;
      const up = x[t * 2 * d + d + i]!;
      out[t * d + i] = roundTo(roundTo(silu(gate), dtype) * up, dtype);
    }
  }
  return out;
}

/** GELU with the tanh approximation (PyTorch's approximate='tanh'). */
export function geluTanh(g: number): number {
  return 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3)));
}

/** out[t, i] = round(round(geluTanh(x[t, i])) * x[t, d + i]) for x [numTokens, 2d]. */
export function geluTanhAndMul(x: ArrayLike<number>, numTokens: number, d: number, dtype: FloatDType): Float64Array {
  const out = new Float64Array(numTokens * d);
  for (let t = 0; t < numTokens; ++t)
    for (let i = 0; i < d; ++i)
      out[t * d + i] = roundTo(roundTo(geluTanh(x[t * 2 * d + i]!), dtype) * x[t * 2 * d + d + i]!, dtype);
  return out;
}
