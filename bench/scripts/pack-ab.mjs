// The CPU model with its matrices packed for the GEMM (the default) against the Hugging Face layout
// (MINI_VLLM_CPU_PACK=0), interleaved so that both see the same machine: per round and batch size, each layout loads
// dummy:stories110M, runs 8 warm-up decode steps and times 30 (EngineCore.step, in-process); medians over rounds.
//   node bench/scripts/pack-ab.mjs [--batches 1,16,64] [--rounds 3]   (after npm run build)
import { performance } from 'node:perf_hooks';
import { EngineCore, loadModel, resolveSamplingParams } from '../../dist/lib/index.js';
import { scriptArgs } from './args.mjs';

const { values } = scriptArgs(
  `usage: node bench/scripts/pack-ab.mjs [--batches 1,16,64] [--rounds 3]   (after npm run build)
  Decode step time, packed CPU weights vs the Hugging Face layout (MINI_VLLM_CPU_PACK=0), interleaved rounds.`,
  {
    options: { batches: { type: 'string', default: '1,16,64' }, rounds: { type: 'string', default: '3' } },
  },
);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function stepMs(batch, pack) {
  process.env.MINI_VLLM_CPU_PACK = pack ? '1' : '0';
  const m = await loadModel('dummy:stories110M', { device: 'cpu' });
  const core = EngineCore.fromLoaded(m, { maxModelLen: 256 });
  const params = resolveSamplingParams({ temperature: 0, maxTokens: 100, ignoreEos: true });
  for (let i = 0; i < batch; ++i) core.add({ requestId: String(i), promptTokenIds: [1, 400, 500, 600], params });
  for (let i = 0; i < 8; ++i) core.step();
  const times = [];
  for (let i = 0; i < 30; ++i) {
    const t = performance.now();
    core.step();
    times.push(performance.now() - t);
  }
  core.dispose();
  m.model.dispose();
  return median(times);
}

const rows = [];
for (const batch of values.batches.split(',').map(Number)) {
  const got = { packed: [], hf: [] };
  for (let r = 0; r < Number(values.rounds); ++r) {
    got.packed.push(await stepMs(batch, true));
    got.hf.push(await stepMs(batch, false));
  }
  rows.push({ batch, ...got });
  console.error(`batch ${batch}: packed ${got.packed.map((x) => x.toFixed(1))}, hf ${got.hf.map((x) => x.toFixed(1))}`);
}
console.log('| batch | packed step ms (median of rounds) | HF layout step ms | HF / packed | rounds (packed; HF) |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows) {
  const p = median(r.packed),
    h = median(r.hf);
  console.log(
    `| ${r.batch} | ${p.toFixed(2)} | ${h.toFixed(2)} | ${(h / p).toFixed(2)} | ` +
      `${r.packed.map((x) => x.toFixed(1)).join(' ')}; ${r.hf.map((x) => x.toFixed(1)).join(' ')} |`,
  );
}
