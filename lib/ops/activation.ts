import { native } from '../native.js';
import type { Tensor } from '../tensor.js';
import { tensorArg } from './args.js';

/**
 * SwiGLU's gate: out = silu(x[:, :d]) * x[:, d:], silu(g) = g / (1 + e^-g). silu's result is rounded to the
 * storage dtype before the multiply (as vLLM does).
 *
 * @param out [numTokens, d], written
 * @param x   [numTokens, 2 * d]: gate half, then up half
 */
export function siluAndMul(out: Tensor, x: Tensor): void {
  native.siluAndMul(tensorArg(out, 'siluAndMul', 'out'), tensorArg(x, 'siluAndMul', 'x'));
}
