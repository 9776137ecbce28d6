// reshapeAndCache at Llama-3-8B KV shapes: a decode step's keys and values (one per sequence) and a prefill chunk's,
// into shuffled slots of the pool.
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase } from './case.js';
import { ATTN, kvPool, shuffledBlocks } from './kv-pool.js';

function cacheCase(tokens: number, dtype: FloatDType): OpCase {
  const { kvHeads, headSize, blockSize } = ATTN;
  const numBlocks = Math.max(64, Math.ceil(tokens / blockSize) * 2);
  return {
    op: 'reshapeAndCache',
    dtype,
    shape: `${tokens} tok, ${kvHeads} KV heads x ${headSize}`,
    // K and V read once and written once, and one slot per token
    bytes: 4 * tokens * kvHeads * headSize * itemSize(dtype) + 4 * tokens,
    setup: (device) => {
      const { keyCache, valueCache } = kvPool(device, dtype, numBlocks);
      const key = Tensor.full([tokens, kvHeads, headSize], 0.5, { dtype, device });
      const value = Tensor.full([tokens, kvHeads, headSize], 0.25, { dtype, device });
      const blocks = shuffledBlocks(numBlocks);
      const slots = Array.from(
        { length: tokens },
        (_, t) => blocks[Math.floor(t / blockSize)]! * blockSize + (t % blockSize),
      );
      const slotMapping = Tensor.fromArray(slots, [tokens], { dtype: 'int32', device });
      return {
        run: () => ops.reshapeAndCache(key, value, keyCache, valueCache, slotMapping),
        free: () => [keyCache, valueCache, key, value, slotMapping].forEach((t) => t.dispose()),
      };
    },
  };
}

export const cases: CaseList = (quick) =>
  (quick ? (['float32'] as const) : (['float32', 'bfloat16'] as const)).flatMap((dtype) => [
    cacheCase(32, dtype),
    cacheCase(4096, dtype),
  ]);
