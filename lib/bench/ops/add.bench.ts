// add at a decode batch and a prefill chunk of Llama-2-7B's hidden size.
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

function addCase(tokens: number, hidden: number, dtype: FloatDType): OpCase {
  return {
    op: 'add',
    dtype,
    shape: `[${tokens}, ${hidden}]`,
    bytes: 3 * tokens * hidden * itemSize(dtype),
    setup: (device) => {
      const a = Tensor.full([tokens, hidden], 0.5, { dtype, device });
      const b = Tensor.full([tokens, hidden], 0.25, { dtype, device });
      const out = Tensor.empty([tokens, hidden], { dtype, device });
      return { run: () => ops.add(out, a, b), free: () => [a, b, out].forEach((t) => t.dispose()) };
    },
  };
}

export const cases: CaseList = (quick) =>
  dtypesFor(quick).flatMap((dtype) => [7, 8192].map((tokens) => addCase(tokens, 4096, dtype)));
