// The elementwise add: a residual connection where no RMSNorm follows.
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
