// embedding from a Llama-2-7B-sized table (32000 x 4096) at a decode batch and a prefill chunk.
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

function embeddingCase(tokens: number, dtype: FloatDType): OpCase {
  const [vocab, hidden] = [32000, 4096];
  return {
    op: 'embedding',
    dtype,
    shape: `${tokens} ids, ${vocab} x ${hidden}`,
    bytes: 2 * tokens * hidden * itemSize(dtype) + 4 * tokens,
    setup: (device) => {
      const table = Tensor.full([vocab, hidden], 0.5, { dtype, device });
      const ids = Tensor.fromArray(
        Array.from({ length: tokens }, (_, i) => (i * 7919) % vocab),
        [tokens],
        { dtype: 'int32', device },
      );
      const out = Tensor.empty([tokens, hidden], { dtype, device });
      return { run: () => ops.embedding(out, ids, table), free: () => [table, ids, out].forEach((t) => t.dispose()) };
    },
  };
}

export const cases: CaseList = (quick) =>
  dtypesFor(quick).flatMap((dtype) => [7, 8192].map((tokens) => embeddingCase(tokens, dtype)));
