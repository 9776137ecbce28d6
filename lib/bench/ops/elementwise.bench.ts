// scale at a decode batch and a prefill chunk of Gemma 2 2B's hidden size; softCap on a decode step's logits (256,000
// tokens a row) and a batch of 16.
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

function mapCase(op: 'scale' | 'softCap', tokens: number, d: number, dtype: FloatDType): OpCase {
  return {
    op,
    dtype,
    shape: `[${tokens}, ${d}]`,
    bytes: 2 * tokens * d * itemSize(dtype),
    setup: (device) => {
      const x = Tensor.full([tokens, d], 0.5, { dtype, device });
      const out = Tensor.empty([tokens, d], { dtype, device });
      const run = op === 'scale' ? () => ops.scale(out, x, 48) : () => ops.softCap(out, x, 30);
      return { run, free: () => [x, out].forEach((t) => t.dispose()) };
    },
  };
}

export const cases: CaseList = (quick) =>
  dtypesFor(quick).flatMap((dtype) => [
    ...[7, 8192].map((tokens) => mapCase('scale', tokens, 2304, dtype)),
    ...[1, 16].map((tokens) => mapCase('softCap', tokens, 256000, dtype)),
  ]);
