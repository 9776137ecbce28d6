import { native } from '../native.js';
import type { Tensor } from '../tensor.js';
import { tensorArg } from './args.js';

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
  native.embedding(tensorArg(out, 'embedding', 'out'), tensorArg(ids, 'embedding', 'ids'), tensorArg(table, 'embedding', 'table'));
}

/**
 * Row gather: out[i] = x[indices[i]], e.g. each sequence's last token before the logits.
 *
 * @param out     [n, hidden], x's dtype, written
 * @param x       [numTokens, hidden] (rows may be strided)
 * @param indices int32 [n], each in [0, numTokens)
 */
export function gatherRows(out: Tensor, x: Tensor, indices: Tensor): void {
  native.gatherRows(tensorArg(out, 'gatherRows', 'out'), tensorArg(x, 'gatherRows', 'x'), tensorArg(indices, 'gatherRows', 'indices'));
}
