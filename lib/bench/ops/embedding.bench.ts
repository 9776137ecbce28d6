// embedding from a Llama-2-7B-sized table (32000 x 4096) at a decode batch and a prefill chunk; on the CPU also
// embeddingPacked, the same rows from the table packed by packLinearWeight (a tied embedding: a row's elements 16
// apart, each in a cache line of its own, which the GB/s of the rows' bytes shows).
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

function embeddingCase(tokens: number, dtype: FloatDType, packed = false): OpCase {
  const [vocab, hidden] = [32000, 4096];
  return {
    op: packed ? 'embeddingPacked' : 'embedding',
    dtype,
    shape: `${tokens} ids, ${vocab} x ${hidden}`,
    bytes: 2 * tokens * hidden * itemSize(dtype) + 4 * tokens,
    setup: (device) => {
      const table = packed
        ? Tensor.full([vocab / 16, hidden, 16], 0.5, { dtype, device })
        : Tensor.full([vocab, hidden], 0.5, { dtype, device });
      const ids = Tensor.fromArray(
        Array.from({ length: tokens }, (_, i) => (i * 7919) % vocab),
        [tokens],
        { dtype: 'int32', device },
      );
      const out = Tensor.empty([tokens, hidden], { dtype, device });
      const run = packed ? () => ops.embeddingPacked(out, ids, table, vocab) : () => ops.embedding(out, ids, table);
      return { run, free: () => [table, ids, out].forEach((t) => t.dispose()) };
    },
  };
}

export const cases: CaseList = (quick, device) => [
  ...dtypesFor(quick).flatMap((dtype) => [7, 8192].map((tokens) => embeddingCase(tokens, dtype))),
  ...(device === 'cpu' && !quick ? [7, 8192].map((tokens) => embeddingCase(tokens, 'float32', true)) : []),
];
