// rotaryEmbedding at Llama-3-8B attention shapes: 32 query heads, 8 KV heads, head size 128, NeoX style.
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

function rotaryCase(tokens: number, dtype: FloatDType): OpCase {
  const [heads, kvHeads, headSize, maxPosition] = [32, 8, 128, 8192];
  return {
    op: 'rotaryEmbedding',
    dtype,
    shape: `${tokens} tok, ${heads}/${kvHeads} heads x ${headSize}`,
    // q and k read and written, one cos/sin row (float32) and one position per token
    bytes: tokens * (2 * (heads + kvHeads) * headSize * itemSize(dtype) + headSize * 4 + 4),
    setup: (device) => {
      const positions = Tensor.fromArray(
        Array.from({ length: tokens }, (_, i) => (i * 7919) % maxPosition),
        [tokens],
        { dtype: 'int32', device },
      );
      const q = Tensor.full([tokens, heads * headSize], 0.5, { dtype, device });
      const k = Tensor.full([tokens, kvHeads * headSize], 0.5, { dtype, device });
      const cache = ops.ropeCosSinCache(headSize, maxPosition, 500000, { device });
      return {
        run: () => ops.rotaryEmbedding(positions, q, k, headSize, cache, true),
        free: () => [positions, q, k, cache].forEach((t) => t.dispose()),
      };
    },
  };
}

export const cases: CaseList = (quick) =>
  dtypesFor(quick).flatMap((dtype) => [7, 8192].map((tokens) => rotaryCase(tokens, dtype)));
