// A paged KV pool filled as the attention and cache benchmarks need it: Llama-3-8B attention (32 query heads, 8 KV
// heads, head size 128, block size 16), each sequence's blocks shuffled over the pool so none reads consecutive
// memory.
import type { Device, FloatDType } from '../../dtype.js';
import { Tensor } from '../../tensor.js';

export const ATTN = { heads: 32, kvHeads: 8, headSize: 128, blockSize: 16 };

/** The block ids [0, numBlocks) in a fixed shuffled order (an LCG), so consecutive blocks are far apart. */
export function shuffledBlocks(numBlocks: number): number[] {
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  let state = 12345;
  for (let i = numBlocks - 1; i > 0; --i) {
    state = (state * 1103515245 + 12345) >>> 0;
    const j = state % (i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids;
}

export function kvPool(device: Device, dtype: FloatDType, numBlocks: number): { keyCache: Tensor; valueCache: Tensor } {
  const shape = [numBlocks, ATTN.blockSize, ATTN.kvHeads, ATTN.headSize];
  return {
    keyCache: Tensor.full(shape, 0.01, { dtype, device }),
    valueCache: Tensor.full(shape, 0.02, { dtype, device }),
  };
}
