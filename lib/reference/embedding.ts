// Reference token embedding: the rows of the table the ids name.
import { gatherRows } from './gather-rows.js';

/** out[i] = table[ids[i]] for a [vocabSize, hidden] table. */
export function embedding(table: ArrayLike<number>, ids: ArrayLike<number>, hidden: number): Float64Array {
  return gatherRows(table, ids, hidden);
}
