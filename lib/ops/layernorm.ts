// RMSNorm, plain and fused with the residual add (vLLM's layernorm_kernels).
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
