// sampleRows over the Llama 2 vocabulary (32000) on the CPU threads: greedy rows, and rows with temperature, top-k and
// top-p, at a small and a large decode batch. The logits are read once per row.
import * as ops from '../../ops/index.js';
import { type CaseList, type OpCase } from './case.js';

// The settings a row can carry: greedy; temperature alone (the single-pass draw); top-p alone; the usual mix.
const KINDS = {
  greedy: { label: 'greedy', temperature: 0, topK: 0, topP: 1 },
  temperature: { label: 'T 0.8, no filter', temperature: 0.8, topK: 0, topP: 1 },
  topP: { label: 'T 0.8, top-p 0.95', temperature: 0.8, topK: 0, topP: 0.95 },
  filtered: { label: 'T 0.8, top-k 50, top-p 0.95', temperature: 0.8, topK: 50, topP: 0.95 },
};

function sampleRowsCase(rows: number, kind: keyof typeof KINDS): OpCase {
  const vocab = 32000;
  const k = KINDS[kind];
  return {
    op: 'sampleRows',
    dtype: 'float32',
    shape: `${rows} rows x ${vocab}, ${k.label}`,
    bytes: rows * vocab * 4,
    setup: () => {
      const logits = new Float32Array(rows * vocab);
      for (let i = 0; i < logits.length; ++i) logits[i] = Math.sin(i * 12.9898) * 4;
      const params = {
        temperature: new Float32Array(rows).fill(k.temperature),
        topK: new Int32Array(rows).fill(k.topK),
        topP: new Float32Array(rows).fill(k.topP),
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
      ? [sampleRowsCase(8, 'filtered')]
      : [
          sampleRowsCase(1, 'greedy'),
          sampleRowsCase(1, 'temperature'),
          sampleRowsCase(1, 'topP'),
          sampleRowsCase(8, 'filtered'),
          sampleRowsCase(64, 'temperature'),
          sampleRowsCase(64, 'filtered'),
        ];
