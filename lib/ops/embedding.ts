// The token embedding.
import { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('embedding', {
  embedding: [
    'out: float[numTokens, hidden], ids: int32[numTokens], table: float[vocabSize, hidden]',
    (device) => [...zeros(device, [3, 16]), Tensor.zeros([3], { dtype: 'int32', device }), ...zeros(device, [50, 16])],
  ],
});

/**
 * Token embedding: out[i] = table[ids[i]].
 *
 * @param out   [numTokens, hidden], table's dtype, written (rows may be strided)
 * @param ids   int32 [numTokens], each in [0, vocabSize)
 * @param table [vocabSize, hidden]
 *
 * An id outside the table is a RangeError (on CUDA at the next synchronize; that row is zero-filled).
 */
export function embedding(out: Tensor, ids: Tensor, table: Tensor): void {
  runOp(OPS.embedding, [out, ids, table]);
}
