// add and sigmoidGatedAdd at a decode batch and a prefill chunk of Llama-2-7B's hidden size.
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

function gatedCase(tokens: number, hidden: number, dtype: FloatDType): OpCase {
  return {
    op: 'sigmoidGatedAdd',
    dtype,
    shape: `[${tokens}, ${hidden}]`,
    bytes: (3 * tokens * hidden + tokens) * itemSize(dtype),
    setup: (device) => {
      const a = Tensor.full([tokens, hidden], 0.5, { dtype, device });
      const b = Tensor.full([tokens, hidden], 0.25, { dtype, device });
      const gate = Tensor.full([tokens, 1], 0.1, { dtype, device });
      const out = Tensor.empty([tokens, hidden], { dtype, device });
      return {
        run: () => ops.sigmoidGatedAdd(out, a, b, gate),
        free: () => [a, b, gate, out].forEach((t) => t.dispose()),
      };
    },
  };
}

export const cases: CaseList = (quick) =>
  dtypesFor(quick).flatMap((dtype) =>
    [7, 8192].flatMap((tokens) => [addCase(tokens, 4096, dtype), gatedCase(tokens, 4096, dtype)]),
  );
