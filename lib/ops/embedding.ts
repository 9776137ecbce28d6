// The token embedding; on the CPU, also from a table packed by packLinearWeight (a tied embedding, which the
// classifier reads as linearPacked).
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

const PACKED = defineOps(
  'embedding',
  {
    embeddingPacked: [
      'out: float[numTokens, hidden], ids: int32[numTokens], table: float[numPanels, hidden, 16], ' +
        'vocabSize: positiveInteger',
      (device) => [
        ...zeros(device, [3, 8]),
        Tensor.zeros([3], { dtype: 'int32', device }),
        ...zeros(device, [2, 8, 16]),
        20,
      ],
    ],
  },
  ['cpu'],
);

/**
 * {@link embedding} from a table packed by packLinearWeight (CPU): the same rows, bit for bit.
 *
 * @param out       [numTokens, hidden], table's dtype, written (rows may be strided)
 * @param ids       int32 [numTokens], each in [0, vocabSize)
 * @param table     [ceil(vocabSize / 16), hidden, 16], dense: table[p][k][j] = row 16p + j's element k
 * @param vocabSize the table's rows before packing
 */
export function embeddingPacked(out: Tensor, ids: Tensor, table: Tensor, vocabSize: number): void {
  runOp(PACKED.embeddingPacked, [out, ids, table, vocabSize]);
}
