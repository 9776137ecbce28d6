// The quantised ops at Llama-2-7B layer shapes (4096 x 4096 and 11008 x 4096): quantLinear's GEMV at decode batch
// sizes against the read bandwidth (bytes: the quantised weight, read once), its GEMM against the FMA peak, for every
// type; on the CPU the same for Q4_0, Q8_0, Q4_K and Q6_K interleaved by packQuantWeight (quantLinearPacked, what the
// CPU model runs); quantEmbedding's row gather (and quantEmbeddingPacked's).
import type { FloatDType } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { QUANT_FORMATS, QUANT_TYPES, type QuantType, quantRowWords } from '../../quant/formats.js';
import { quantizeRows } from '../../quant/quantize.js';
import { QuantizedTensor } from '../../quant/tensor.js';
import { type CaseList, type OpCase } from './case.js';

// One quantised weight per type and shape, made once (quantising 45M values in TypeScript takes a while).
const made = new Map<string, Uint8Array>();
function blocks(type: QuantType, rows: number, cols: number): Uint8Array {
  const key = `${type} ${rows} ${cols}`;
  let b = made.get(key);
  if (!b) {
    const x = new Float32Array(rows * cols);
    for (let i = 0; i < x.length; ++i) x[i] = Math.sin(i * 0.7) * 0.05;
    b = quantizeRows(type, x, rows, cols);
    made.set(key, b);
  }
  return b;
}

function quantCase(
  type: QuantType,
  tokens: number,
  outF: number,
  inF: number,
  dtype: FloatDType,
  packed = false,
): OpCase {
  const gemm = tokens > 16;
  const itemBytes = dtype === 'float32' ? 4 : 2;
  return {
    op: `${packed ? 'quantLinearPacked' : 'quantLinear'} ${gemm ? 'GEMM' : 'GEMV'}`,
    dtype: `${dtype}/w ${type}`,
    shape: `${tokens} x ${inF} -> ${outF}`,
    bytes: outF * quantRowWords(type, inF) * 4 + tokens * (inF + outF) * itemBytes,
    flops: 2 * tokens * outF * inF,
    limit: gemm ? 'flops' : 'bytes',
    setup: (device) => {
      const x = Tensor.full([tokens, inF], 0.5, { dtype, device });
      const w = QuantizedTensor.empty(type, outF, inF, device);
      w.writeRows(0, outF, blocks(type, outF, inF));
      const out = Tensor.empty([tokens, outF], { dtype, device });
      const id = QUANT_FORMATS[type].id;
      if (packed) {
        const p = Tensor.empty(w.data.shape, { dtype: 'int32', device });
        ops.packQuantWeight(p, w.data, id);
        w.dispose();
        return { run: () => ops.quantLinearPacked(out, x, p, id), free: () => [x, p, out].forEach((t) => t.dispose()) };
      }
      return { run: () => ops.quantLinear(out, x, w.data, id), free: () => [x, w, out].forEach((t) => t.dispose()) };
    },
  };
}

function embeddingCase(type: QuantType, packed = false): OpCase {
  const [vocab, hidden, n] = [32000, 4096, 512];
  return {
    op: packed ? 'quantEmbeddingPacked' : 'quantEmbedding',
    dtype: `float32/w ${type}`,
    shape: `${n} ids of ${vocab} x ${hidden}`,
    bytes: n * (quantRowWords(type, hidden) * 4 + hidden * 4),
    limit: 'bytes',
    setup: (device) => {
      const table = QuantizedTensor.empty(type, vocab, hidden, device);
      const ids = Tensor.fromArray(
        Array.from({ length: n }, (_, i) => (i * 7919) % vocab),
        [n],
        { dtype: 'int32', device },
      );
      const out = Tensor.empty([n, hidden], { device });
      const id = QUANT_FORMATS[type].id;
      if (packed) {
        const p = Tensor.empty(table.data.shape, { dtype: 'int32', device });
        ops.packQuantWeight(p, table.data, id);
        table.dispose();
        return {
          run: () => ops.quantEmbeddingPacked(out, ids, p, id),
          free: () => [p, ids, out].forEach((t) => t.dispose()),
        };
      }
      return {
        run: () => ops.quantEmbedding(out, ids, table.data, id),
        free: () => [table, ids, out].forEach((t) => t.dispose()),
      };
    },
  };
}

export const cases: CaseList = (quick, device) => {
  const out: OpCase[] = [];
  const dtype: FloatDType = device === 'cuda' ? 'bfloat16' : 'float32';
  for (const type of quick ? (['Q8_0', 'Q4_0', 'Q4_K'] as const) : QUANT_TYPES) {
    const packings = device === 'cpu' && ['Q4_0', 'Q8_0', 'Q4_K', 'Q6_K'].includes(type) ? [false, true] : [false];
    for (const [outF, inF] of quick
      ? [[4096, 4096]]
      : [
          [4096, 4096],
          [11008, 4096],
        ])
      for (const tokens of quick ? [1] : [1, 4, 16])
        for (const packed of packings) out.push(quantCase(type, tokens, outF!, inF!, dtype, packed));
    for (const packed of packings) out.push(quantCase(type, quick ? 128 : 512, 4096, 4096, dtype, packed));
    if (!quick) for (const packed of packings) out.push(embeddingCase(type, packed));
  }
  return out;
};
