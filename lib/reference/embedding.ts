// Reference token embedding: the rows of the table the ids name, from the table or from its packed layout.
import { gatherRows } from './gather-rows.js';

/** out[i] = table[ids[i]] for a [vocabSize, hidden] table. */
export function embedding(table: ArrayLike<number>, ids: ArrayLike<number>, hidden: number): Float64Array {
  return gatherRows(table, ids, hidden);
}

/** The rows `ids` names of a [ceil(vocabSize / 16), hidden, 16] table packed by packLinearWeight: row n's element k at
 * packed[n / 16][k][n % 16]. */
export function embeddingPacked(packed: ArrayLike<number>, ids: ArrayLike<number>, hidden: number): Float64Array {
  const out = new Float64Array(ids.length * hidden);
  for (let i = 0; i < ids.length; ++i) {
    const n = ids[i]!;
    for (let k = 0; k < hidden; ++k) out[i * hidden + k] = packed[(Math.floor(n / 16) * hidden + k) * 16 + (n % 16)]!;
  }
  return out;
}
