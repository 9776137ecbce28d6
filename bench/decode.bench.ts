// Single-sequence decode speed of whole models through generate(): median TPOT over repeats, and the weight-read
// bandwidth it implies (every decode step reads all weights once) against the machine's read bandwidth measured in
// the same run. The serving benchmarks (TTFT/TPOT/ITL under load) come with the engine.
//   node dist/bench/decode.bench.js [--models dummy:stories15M,dummy:stories110M] [--tokens 128] [--repeats 3] [--device cpu] [--json file]
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { backends, generate, loadModel, synchronize } from '../lib/index.js';
import { median, readBandwidth } from '../lib/bench/bandwidth.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'dummy:stories15M,dummy:stories110M' },
    tokens: { type: 'string', default: '128' },
    repeats: { type: 'string', default: '3' },
    device: { type: 'string', default: 'cpu' },
    dtype: { type: 'string', default: 'auto' },
    json: { type: 'string' },
  },
});
const device = values.device === 'cuda' ? 'cuda' : 'cpu';
const tokens = Number(values.tokens);
const repeats = Number(values.repeats);


const limitBefore = device === 'cpu' ? readBandwidth() : NaN;
const rows = [];
for (const model of values.models.split(',')) {
  const m = await loadModel(model, { device, dtype: values.dtype as 'auto' });
  const prompt = [m.config.bosTokenId ?? 1, 500, 600, 700];
  await generate(m, [prompt], { temperature: 0, maxTokens: 8, ignoreEos: true }); // warm-up
  const tpots: number[] = [], ttfts: number[] = [];
  for (let r = 0; r < repeats; ++r) {
    const [res] = await generate(m, [prompt], { temperature: 0, maxTokens: tokens, ignoreEos: true });
    synchronize();
    const t = res!.timings;
    ttfts.push(t.firstToken - t.arrival);
    tpots.push((t.finish - t.firstToken) / (res!.tokenIds.length - 1));
  }
  const tpot = median(tpots);
  const bytes = m.model.weightsBytes;
  rows.push({ model, device, dtype: m.model.dtype, weightsBytes: bytes, promptTokens: prompt.length, outputTokens: tokens, repeats,
    tpotMs: tpot, tpotMsAll: tpots, ttftMs: median(ttfts), decodeTokensPerSecond: 1000 / tpot, weightReadGBps: bytes / (tpot / 1000) / 1e9 });
  m.model.dispose();
}
const limitAfter = device === 'cpu' ? readBandwidth() : NaN;
const limit = Math.max(limitBefore, limitAfter);
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${backends().cpu.threads} threads`;
console.log(`machine: ${machine}; read bandwidth (sum of 1 GiB float32): ${limit.toFixed(1)} GB/s (before ${limitBefore.toFixed(1)}, after ${limitAfter.toFixed(1)})`);
console.log('model                 dtype      weights MB  TTFT ms  TPOT ms  tok/s   weight GB/s  of read bw');
for (const r of rows)
  console.log(`${r.model.padEnd(21)} ${r.dtype.padEnd(10)} ${(r.weightsBytes / 1e6).toFixed(0).padStart(10)} ${r.ttftMs.toFixed(1).padStart(8)} ${r.tpotMs.toFixed(2).padStart(8)} ${r.decodeTokensPerSecond.toFixed(1).padStart(6)} ${r.weightReadGBps.toFixed(1).padStart(12)} ${device === 'cpu' ? `${((100 * r.weightReadGBps) / limit).toFixed(0)}%` : ''}`);
if (values.json) writeFileSync(values.json, JSON.stringify({ machine, readGBps: { before: limitBefore, after: limitAfter }, rows }, null, 2));
