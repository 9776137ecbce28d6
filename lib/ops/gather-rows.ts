// The row gather before the logits: each sequence's last token.
import { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('gather-rows', {
  gatherRows: [
    'out: float[n, hidden], x: float[numTokens, hidden], indices: int32[n]',
    (device) => [...zeros(device, [2, 16], [3, 16]), Tensor.zeros([2], { dtype: 'int32', device })],
  ],
});

/**
 * Row gather: out[i] = x[indices[i]], e.g. each sequence's last token before the logits.
 *
 * @param out     [n, hidden], x's dtype, written
 * @param x       [numTokens, hidden] (rows may be strided)
 * @param indices int32 [n], each in [0, numTokens)
 *
 * An index outside x is a RangeError (on CUDA at the next synchronize; that row is zero-filled).
 */
export function gatherRows(out: Tensor, x: Tensor, indices: Tensor): void {
  runOp(OPS.gatherRows, [out, x, indices]);
}
