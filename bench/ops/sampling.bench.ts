// sampleRows over the Llama 2 vocabulary (32000) on the CPU threads: greedy rows, and rows with temperature, top-k and
// top-p, at a small and a large decode batch. The logits are read once per row.
import { ops } from '../../lib/index.js';
import { type CaseList, type OpCase } from './case.js';

function sampleRowsCase(rows: number, filtered: boolean): OpCase {
  const vocab = 32000;
  return {
    op: 'sampleRows',
    dtype: 'float32',
    shape: `${rows} rows x ${vocab}${filtered ? ', T 0.8, top-k 50, top-p 0.95' : ', greedy'}`,
    bytes: rows * vocab * 4,
    setup: () => {
      const logits = new Float32Array(rows * vocab);
      for (let i = 0; i < logits.length; ++i) logits[i] = Math.sin(i * 12.9898) * 4;
      const params = {
        temperature: new Float32Array(rows).fill(filtered ? 0.8 : 0),
        topK: new Int32Array(rows).fill(filtered ? 50 : 0),
        topP: new Float32Array(rows).fill(filtered ? 0.95 : 1),
        minP: new Float32Array(rows),
        uniform: new Float64Array(rows).fill(0.5),
      };
      const out = new Int32Array(rows);
      return { run: () => void ops.sampleRows(logits, rows, vocab, params, out), free: () => {} };
    },
  };
}

export const cases: CaseList = (quick, device) =>
  device !== 'cpu'
    ? []
    : quick
      ? [sampleRowsCase(8, true)]
      : [sampleRowsCase(1, false), sampleRowsCase(8, true), sampleRowsCase(64, true)];
