// linear at Llama-2-7B layer shapes ([outFeatures, inFeatures] of q/k/v/o, 4096 x 4096, and gate/up, 11008 x 4096),
// and stories110M's at decode batches: GEMV against the read bandwidth, batches against the roofline, GEMM against
// the FMA peak.
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

// op: 'linear GEMV' (few tokens, against the bandwidth), 'linear batch' (a decode batch, against the roofline) or
// 'linear GEMM' (a prefill, against the FMA peak).
function linearCase(tokens: number, outF: number, inF: number, dtype: FloatDType, wdtype: FloatDType): OpCase {
  const weightBytes = outF * inF * itemSize(wdtype);
  const kind = tokens <= 4 ? 'GEMV' : tokens <= 64 ? 'batch' : 'GEMM';
  return {
    op: `linear ${kind}`,
    dtype: wdtype === dtype ? dtype : `${dtype}/w ${wdtype}`,
    shape: `${tokens} x ${inF} -> ${outF}`,
    bytes: weightBytes + tokens * (inF + outF) * itemSize(dtype),
    flops: 2 * tokens * outF * inF,
    limit: kind === 'GEMV' ? 'bytes' : kind === 'batch' ? 'roofline' : 'flops',
    setup: (device) => {
      const x = Tensor.full([tokens, inF], 0.5, { dtype, device });
      const w = Tensor.full([outF, inF], 0.01, { dtype: wdtype, device });
      const out = Tensor.empty([tokens, outF], { dtype, device });
      return { run: () => ops.linear(out, x, w), free: () => [x, w, out].forEach((t) => t.dispose()) };
    },
  };
}

// linearPacked (CPU): the same shapes over the weight packed once by packLinearWeight, whose own case is a copy.
function packedCase(tokens: number, outF: number, inF: number): OpCase {
  const kind = tokens <= 4 ? 'GEMV' : tokens <= 64 ? 'batch' : 'GEMM';
  return {
    op: `linearPacked ${kind}`,
    dtype: 'float32',
    shape: `${tokens} x ${inF} -> ${outF}`,
    bytes: outF * inF * 4 + tokens * (inF + outF) * 4,
    flops: 2 * tokens * outF * inF,
    limit: kind === 'GEMV' ? 'bytes' : kind === 'batch' ? 'roofline' : 'flops',
    setup: (device) => {
      const x = Tensor.full([tokens, inF], 0.5, { device });
      const packed = Tensor.full([Math.ceil(outF / 16), inF, 16], 0.01, { device });
      const out = Tensor.empty([tokens, outF], { device });
      return { run: () => ops.linearPacked(out, x, packed), free: () => [x, packed, out].forEach((t) => t.dispose()) };
    },
  };
}

function packCase(outF: number, inF: number): OpCase {
  return {
    op: 'packLinearWeight',
    dtype: 'float32',
    shape: `${outF} x ${inF}`,
    bytes: 2 * outF * inF * 4,
    setup: (device) => {
      const w = Tensor.full([outF, inF], 0.01, { device });
      const packed = Tensor.empty([Math.ceil(outF / 16), inF, 16], { device });
      return { run: () => ops.packLinearWeight(packed, w), free: () => [w, packed].forEach((t) => t.dispose()) };
    },
  };
}

export const cases: CaseList = (quick, device) => {
  const dtypes = dtypesFor(quick);
  const out: OpCase[] = [];
  for (const dtype of dtypes)
    for (const [outF, inF] of [
      [4096, 4096],
      [11008, 4096],
    ] as const)
      for (const tokens of quick ? [1] : [1, 4, 16]) out.push(linearCase(tokens, outF, inF, dtype, dtype));
  if (!quick) for (const w of ['float16', 'bfloat16'] as const) out.push(linearCase(1, 11008, 4096, 'float32', w));
  // a decode batch on stories110M (gate/up 4096 x 768, down 768 x 2048): where serving spends its steps
  if (!quick)
    for (const tokens of [16, 64])
      for (const [outF, inF] of [
        [4096, 768],
        [768, 2048],
      ] as const)
        out.push(linearCase(tokens, outF, inF, 'float32', 'float32'));
  for (const dtype of dtypes)
    for (const tokens of quick ? [128] : device === 'cuda' ? [128, 512, 4096] : [128, 512])
      out.push(linearCase(tokens, 4096, 4096, dtype, dtype));
  if (!quick) out.push(linearCase(512, 11008, 4096, 'float32', 'float32'));
  if (device === 'cpu' && !quick) {
    for (const tokens of [1, 16, 64]) out.push(packedCase(tokens, 4096, 768), packedCase(tokens, 768, 2048));
    out.push(packedCase(16, 4096, 4096), packedCase(512, 4096, 4096), packCase(4096, 4096));
  }
  return out;
};
