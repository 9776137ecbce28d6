// The elementwise add: a residual connection where no RMSNorm follows; and with a sigmoid gate per row (Qwen2-MoE's
// shared expert).
import type { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('add', {
  add: [
    'out: float[numTokens, hidden], a: float[numTokens, hidden], b: float[numTokens, hidden]',
    (device) => zeros(device, [3, 16], [3, 16], [3, 16]),
  ],
});

/**
 * out = a + b, elementwise in fp32, rounded to the dtype. All [numTokens, hidden] of one dtype; out may be a or b.
 */
export function add(out: Tensor, a: Tensor, b: Tensor): void {
  runOp(OPS.add, [out, a, b]);
}

const GATED = defineOps('add', {
  sigmoidGatedAdd: [
    'out: float[numTokens, hidden], a: float[numTokens, hidden], b: float[numTokens, hidden], ' +
      'gate: float[numTokens, 1]',
    (device) => zeros(device, [3, 16], [3, 16], [3, 16], [3, 1]),
  ],
});

/**
 * out[t] = a[t] + sigmoid(gate[t]) · b[t], in fp32, rounded to the dtype once: Qwen2-MoE's shared expert added to the
 * routed experts' output with its own gate. a, b, out [numTokens, hidden], gate [numTokens, 1], one dtype (rows may be
 * strided); out may be a or b.
 */
export function sigmoidGatedAdd(out: Tensor, a: Tensor, b: Tensor, gate: Tensor): void {
  runOp(GATED.sigmoidGatedAdd, [out, a, b, gate]);
}
