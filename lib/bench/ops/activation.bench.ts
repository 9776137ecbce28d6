// siluAndMul and geluTanhAndMul at a decode batch and a prefill chunk of Llama-2-7B's intermediate size.
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

function gatedCase(op: 'siluAndMul' | 'geluTanhAndMul', tokens: number, d: number, dtype: FloatDType): OpCase {
  return {
    op,
    dtype,
    shape: `[${tokens}, 2 x ${d}]`,
    bytes: 3 * tokens * d * itemSize(dtype),
    setup: (device) => {
      const x = Tensor.full([tokens, 2 * d], 0.5, { dtype, device });
      const out = Tensor.empty([tokens, d], { dtype, device });
      const run = op === 'siluAndMul' ? () => ops.siluAndMul(out, x) : () => ops.geluTanhAndMul(out, x);
      return { run, free: () => [x, out].forEach((t) => t.dispose()) };
    },
  };
}

export const cases: CaseList = (quick) =>
  dtypesFor(quick).flatMap((dtype) =>
    [7, 8192].flatMap((tokens) => [
      gatedCase('siluAndMul', tokens, 4096, dtype),
      gatedCase('geluTanhAndMul', tokens, 4096, dtype),
    ]),
  );
