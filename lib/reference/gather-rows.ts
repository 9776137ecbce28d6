// Reference row gather (gatherRows; embedding is the same gather of a vocabulary table).

/** out[i] = table[indices[i]] for a table of `hidden`-wide rows. */
export function gatherRows(table: ArrayLike<number>, indices: ArrayLike<number>, hidden: number): Float64Array {
  const out = new Float64Array(indices.length * hidden);
  for (let i = 0; i < indices.length; ++i)
    for (let j = 0; j < hidden; ++j) out[i * hidden + j] = table[indices[i]! * hidden + j]!;
  return out;
}
