// siluAndMul at a decode batch and a prefill chunk of Llama-2-7B's intermediate size.
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

function siluAndMulCase(tokens: number, d: number, dtype: FloatDType): OpCase {
  return {
    op: 'siluAndMul',
    dtype,
    shape: `[${tokens}, 2 x ${d}]`,
    bytes: 3 * tokens * d * itemSize(dtype),
    setup: (device) => {
      const x = Tensor.full([tokens, 2 * d], 0.5, { dtype, device });
      const out = Tensor.empty([tokens, d], { dtype, device });
      return { run: () => ops.siluAndMul(out, x), free: () => [x, out].forEach((t) => t.dispose()) };
    },
  };
}

export const cases: CaseList = (quick) =>
  dtypesFor(quick).flatMap((dtype) => [7, 8192].map((tokens) => siluAndMulCase(tokens, 4096, dtype)));
