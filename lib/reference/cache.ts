// Reference KV-cache write: each token's K and V rows into their slot of the flat pools.

/** The cache geometry: pools are [numBlocks, blockSize, numKvHeads, headSize], flat. */
export interface CacheShape {
  blockSize: number;
  numKvHeads: number;
  headSize: number;
}

/** keyCache[slot] = key[t], valueCache[slot] = value[t] for each t with slotMapping[t] >= 0 (in place). */
export function reshapeAndCache(
  key: ArrayLike<number>,
  value: ArrayLike<number>,
  keyCache: Float64Array | Float32Array,
  valueCache: Float64Array | Float32Array,
  slotMapping: ArrayLike<number>,
  shape: CacheShape,
): void {
  const row = shape.numKvHeads * shape.headSize;
  for (let t = 0; t < slotMapping.length; ++t) {
    const slot = slotMapping[t]!;
    if (slot < 0) continue;
    for (let i = 0; i < row; ++i) {
      keyCache[slot * row + i] = key[t * row + i]!;
      valueCache[slot * row + i] = value[t * row + i]!;
    }
  }
}
