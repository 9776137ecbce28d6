// Elementwise maps of a [numTokens, d] tensor the model families need between their ops: Gemma's embedding scaled by
// √hidden, and Gemma 2's soft-capped final logits.
import type { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('elementwise', {
  scale: [
    'out: float[numTokens, d], x: float[numTokens, d], factor: finite',
    (device) => [...zeros(device, [3, 16], [3, 16]), 2],
  ],
  softCap: [
    'out: float[numTokens, d], x: float[numTokens, d], cap: positive',
    (device) => [...zeros(device, [3, 16], [3, 16]), 30],
  ],
});

/**
 * out = x · factor, in fp32, rounded to the dtype (Gemma scales its embeddings by √hidden). out may be x; rows may be
 * strided.
 */
export function scale(out: Tensor, x: Tensor, factor: number): void {
  runOp(OPS.scale, [out, x, factor]);
}

/**
 * out = cap · tanh(x / cap), in fp32, rounded to the dtype: Gemma 2's soft-capping of its final logits (its attention
 * logits are capped inside pagedAttention, meta.logitsSoftCap). out may be x; rows may be strided.
 */
export function softCap(out: Tensor, x: Tensor, cap: number): void {
  runOp(OPS.softCap, [out, x, cap]);
}
