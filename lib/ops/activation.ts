// SwiGLU's gate (vLLM's activation_kernels).
import type { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('activation', {
  siluAndMul: ['out: float[numTokens, d], x: float[numTokens, 2*d]', (device) => zeros(device, [3, 16], [3, 32])],
});

/**
 * SwiGLU's gate: out = silu(x[:, :d]) * x[:, d:], silu(g) = g / (1 + e^-g). silu's result is rounded to the
 * storage dtype before the multiply (as vLLM does).
 *
 * @param out [numTokens, d], written
 * @param x   [numTokens, 2 * d]: gate half, then up half
 */
export function siluAndMul(out: Tensor, x: Tensor): void {
  runOp(OPS.siluAndMul, [out, x]);
}
