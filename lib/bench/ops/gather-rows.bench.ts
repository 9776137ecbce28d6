// gatherRows as the engine runs it: each sequence's last token out of a prefill step's hidden states.
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

function gatherRowsCase(seqs: number, tokens: number, dtype: FloatDType): OpCase {
  const hidden = 4096;
  return {
    op: 'gatherRows',
    dtype,
    shape: `${seqs} of ${tokens} rows x ${hidden}`,
    bytes: 2 * seqs * hidden * itemSize(dtype) + 4 * seqs,
    setup: (device) => {
      const x = Tensor.full([tokens, hidden], 0.5, { dtype, device });
      const idx = Tensor.fromArray(
        Array.from({ length: seqs }, (_, i) => Math.floor(((i + 1) * tokens) / seqs) - 1),
        [seqs],
        { dtype: 'int32', device },
      );
      const out = Tensor.empty([seqs, hidden], { dtype, device });
      return { run: () => ops.gatherRows(out, x, idx), free: () => [x, idx, out].forEach((t) => t.dispose()) };
    },
  };
}

export const cases: CaseList = (quick) =>
  dtypesFor(quick).flatMap((dtype) => [gatherRowsCase(8, 2048, dtype), gatherRowsCase(256, 2048, dtype)]);
