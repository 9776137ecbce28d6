// rmsNorm and fusedAddRmsNorm at a decode batch and a prefill chunk of Llama-2-7B's hidden size (rmsNormHeads at
// Qwen3-8B's q heads); [1, 8] times the fixed cost of one op call (argument unpacking and dispatch).
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

/** rmsNorm reads x and writes out; fusedAddRmsNorm reads x and the residual and writes both. */
function normCase(op: 'rmsNorm' | 'fusedAddRmsNorm', tokens: number, hidden: number, dtype: FloatDType): OpCase {
  const rows = op === 'rmsNorm' ? 2 : 4;
  return {
    op,
    dtype,
    shape: `[${tokens}, ${hidden}]`,
    bytes: (rows * tokens * hidden + hidden) * itemSize(dtype),
    setup: (device) => {
      const x = Tensor.full([tokens, hidden], 0.5, { dtype, device });
      const y = Tensor.full([tokens, hidden], 0.25, { dtype, device });
      const w = Tensor.full([hidden], 1, { dtype, device });
      const run = op === 'rmsNorm' ? () => ops.rmsNorm(y, x, w, 1e-6) : () => ops.fusedAddRmsNorm(x, y, w, 1e-6);
      return { run, free: () => [x, y, w].forEach((t) => t.dispose()) };
    },
  };
}

/** Qwen3-8B's q norm at decode and prefill: 32 heads of 128 per token, in place inside the fused qkv row. */
function headsCase(tokens: number, dtype: FloatDType): OpCase {
  const [heads, kvHeads, headDim] = [32, 8, 128];
  return {
    op: 'rmsNormHeads',
    dtype,
    shape: `[${tokens}, ${heads}, ${headDim}] of [${tokens}, ${heads + 2 * kvHeads}, ${headDim}]`,
    bytes: (2 * tokens * heads * headDim + headDim) * itemSize(dtype),
    setup: (device) => {
      const qkv = Tensor.full([tokens, heads + 2 * kvHeads, headDim], 0.5, { dtype, device });
      const q = qkv.narrow(1, 0, heads);
      const w = Tensor.full([headDim], 1, { dtype, device });
      return { run: () => ops.rmsNormHeads(q, q, w, 1e-6), free: () => [qkv, w].forEach((t) => t.dispose()) };
    },
  };
}

export const cases: CaseList = (quick) => [
  { ...normCase('rmsNorm', 1, 8, 'float32'), op: 'rmsNorm (call)' },
  ...dtypesFor(quick).flatMap((dtype) =>
    [7, 8192].flatMap((tokens) => [
      normCase('rmsNorm', tokens, 4096, dtype),
      normCase('fusedAddRmsNorm', tokens, 4096, dtype),
      headsCase(tokens, dtype),
    ]),
  ),
];
