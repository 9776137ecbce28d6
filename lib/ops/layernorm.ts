// RMSNorm, plain, fused with the residual add (vLLM's layernorm_kernels), and per head (q/k norms).
import type { Device } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const rows = (eps: number) => (device: Device) => [...zeros(device, [3, 16], [3, 16], [16]), eps];
const OPS = defineOps('layernorm', {
  rmsNorm: [
    'out: float[numTokens, hidden], x: float[numTokens, hidden], weight: float[hidden], eps: positive',
    rows(1e-6),
  ],
  fusedAddRmsNorm: [
    'x: float[numTokens, hidden], residual: float[numTokens, hidden], weight: float[hidden], eps: positive',
    rows(1e-5),
  ],
  rmsNormHeads: [
    'out: float[numTokens, numHeads, headDim], x: float[numTokens, numHeads, headDim], weight: float[headDim], ' +
      'eps: positive',
    (device: Device) => [...zeros(device, [3, 2, 16], [3, 2, 16], [16]), 1e-6],
  ],
});

/**
 * out = x / sqrt(mean(x²) + eps) * weight, per row. The normalised value is rounded to the storage dtype before
 * the weight multiplies it (as vLLM does).
 *
 * @param out    [numTokens, hidden], written
 * @param x      [numTokens, hidden] (rows may be strided; may be `out` itself)
 * @param weight [hidden]
 */
export function rmsNorm(out: Tensor, x: Tensor, weight: Tensor, eps: number): void {
  runOp(OPS.rmsNorm, [out, x, weight, eps]);
}

/**
 * In place: residual = x + residual (rounded to the dtype); x = rmsNorm(residual, weight, eps).
 *
 * @param x        [numTokens, hidden], overwritten with the normalised sum
 * @param residual [numTokens, hidden], overwritten with the sum
 * @param weight   [hidden]
 */
export function fusedAddRmsNorm(x: Tensor, residual: Tensor, weight: Tensor, eps: number): void {
  runOp(OPS.fusedAddRmsNorm, [x, residual, weight, eps]);
}

/**
 * rmsNorm of each head of each token on its own (Qwen3's and Gemma 3's q/k norms, over the q or k heads of the fused
 * qkv buffer): out[t, h] = rmsNorm(x[t, h]) * weight, the normalised value rounded to the dtype as rmsNorm rounds it.
 *
 * @param out    [numTokens, numHeads, headDim], written (token and head strides free; may be `x` itself)
 * @param x      [numTokens, numHeads, headDim]
 * @param weight [headDim]
 */
export function rmsNormHeads(out: Tensor, x: Tensor, weight: Tensor, eps: number): void {
  runOp(OPS.rmsNormHeads, [out, x, weight, eps]);
}
