// sampleRows over the Llama 2 vocabulary (32000) on the CPU threads: greedy rows, and rows with temperature, top-k and
// top-p, at a small and a large decode batch. The logits are read once per row. applyTokenBitmask (structured
// output's mask) over the Llama 2 and Qwen 2 (152064) vocabularies at batch 1 and 64, on either device.
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
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

/**
 * Every row masked with a mixed mask: half its words refuse all 32 tokens, a quarter allow all, a quarter alternate
 * (what a mask looks like inside a JSON string: most tokens allowed, some whole ranges not). Bytes: the mask read and
 * every logit written once (the most it can write).
 */
function bitmaskCase(rows: number, vocab: number): OpCase {
  const words = Math.ceil(vocab / 32);
  return {
    op: 'applyTokenBitmask',
    dtype: 'float32',
    shape: `${rows} rows x ${vocab}`,
    bytes: rows * (words * 4 + vocab * 4),
    setup: (device) => {
      const logits = Tensor.full([rows, vocab], 0.5, { device });
      const mask = Int32Array.from({ length: rows * words }, (_, i) => [0, 0, -1, 0x55555555][i % 4]!);
      const bitmask = Tensor.fromArray(mask, [rows, words], { dtype: 'int32', device });
      const ids = Tensor.fromArray(
        Array.from({ length: rows }, (_, i) => i),
        [rows],
        { dtype: 'int32', device },
      );
      return {
        run: () => ops.applyTokenBitmask(logits, bitmask, ids),
        free: () => [logits, bitmask, ids].forEach((t) => t.dispose()),
      };
    },
  };
}

const bitmaskCases = (quick: boolean) =>
  quick ? [bitmaskCase(64, 32000)] : [1, 64].flatMap((rows) => [32000, 152064].map((v) => bitmaskCase(rows, v)));

export const cases: CaseList = (quick, device) =>
  device !== 'cpu'
    ? bitmaskCases(quick)
    : quick
      ? [sampleRowsCase(8, 'filtered'), ...bitmaskCases(quick)]
      : [
          ...bitmaskCases(quick),
          sampleRowsCase(1, 'greedy'),
          sampleRowsCase(1, 'temperature'),
          sampleRowsCase(1, 'topP'),
          sampleRowsCase(8, 'filtered'),
          sampleRowsCase(64, 'temperature'),
          sampleRowsCase(64, 'filtered'),
        ];
