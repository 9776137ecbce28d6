// Writing a step's new keys and values into the paged KV cache (vLLM's cache_kernels).
import { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

/** A paged K or V pool: [numBlocks, blockSize, numKvHeads, headSize] (attention.ts reads the same). */
export const KV_POOL = 'float[numBlocks, blockSize, numKvHeads, headSize]';

const OPS = defineOps('cache', {
  reshapeAndCache: [
    `key: float[numTokens, numKvHeads, headSize], value: float[numTokens, numKvHeads, headSize], ` +
      `keyCache: ${KV_POOL}, valueCache: ${KV_POOL}, slotMapping: int32[numTokens]`,
    (device) => [
      ...zeros(device, [3, 2, 8], [3, 2, 8], [4, 16, 2, 8], [4, 16, 2, 8]),
      Tensor.fromArray([0, 17, 33], [3], { dtype: 'int32', device }),
    ],
  ],
});

/**
 * Writes a step's new keys and values into the paged KV cache: token t goes to slot `slotMapping[t]`, that is
 * block `slot / blockSize`, offset `slot % blockSize`. A negative slot is padding and is skipped.
 *
 * @param key         [numTokens, numKvHeads, headSize] (heads may be strided, e.g. a view of a fused qkv row)
 * @param value       [numTokens, numKvHeads, headSize]
 * @param keyCache    [numBlocks, blockSize, numKvHeads, headSize], written
 * @param valueCache  [numBlocks, blockSize, numKvHeads, headSize], written
 * @param slotMapping int32 [numTokens]
 *
 * A slot past the cache is a RangeError: on the CPU before anything is written; on CUDA those tokens are
 * skipped and the next synchronize throws.
 */
export function reshapeAndCache(
  key: Tensor,
  value: Tensor,
  keyCache: Tensor,
  valueCache: Tensor,
  slotMapping: Tensor,
): void {
  runOp(OPS.reshapeAndCache, [key, value, keyCache, valueCache, slotMapping]);
}
