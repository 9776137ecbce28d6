// The MLP's gated activations (vLLM's activation_kernels): SwiGLU's (Llama) and GeGLU's with tanh-approximated GELU
// (Gemma).
import type { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('activation', {
  siluAndMul: ['out: float[numTokens, d], x: float[numTokens, 2*d]', (device) => zeros(device, [3, 16], [3, 32])],
  geluTanhAndMul: ['out: float[numTokens, d], x: float[numTokens, 2*d]', (device) => zeros(device, [3, 16], [3, 32])],
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

/**
 * GeGLU's gate (Gemma's MLP, hidden_activation gelu_pytorch_tanh): out = gelu(x[:, :d]) * x[:, d:], gelu(g) = g/2 ·
 * (1 + tanh(√(2/π) (g + 0.044715 g³))). gelu's result is rounded to the storage dtype before the multiply, as
 * siluAndMul's.
 *
 * @param out [numTokens, d], written
 * @param x   [numTokens, 2 * d]: gate half, then up half
 */
export function geluTanhAndMul(out: Tensor, x: Tensor): void {
  runOp(OPS.geluTanhAndMul, [out, x]);
}
