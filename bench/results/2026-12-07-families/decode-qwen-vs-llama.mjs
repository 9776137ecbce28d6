#!/usr/bin/env node
// Issue 33's goal "a Qwen2.5-0.5B-shaped dummy decodes at batch 1 within 10% of a Llama of the same parameter count":
// dummy:qwen2.5-0.5b against the same shapes as a Llama (no q/k/v biases: 27,648 fewer parameters of 494M), on the
// CPU in float32, batch 1, 128 greedy tokens after a one-token prompt, decode tok/s as `generate --json` reports it
// (decodeThroughput), the median of 3 generations. Each measurement is a fresh process (one model loaded: two 2 GB
// models in one process read at speeds that depended on which was loaded first); the two alternate, the order
// reversed each round. Run after `npm run build`:
//   node bench/results/2026-12-07-families/decode-qwen-vs-llama.mjs [rounds]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const names = ['qwen2.5-0.5b', 'llama-shaped-as-qwen2.5-0.5b'];
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

if (process.argv[2] === '--one') {
  const { generate } = await import('../../../dist/lib/engine/index.js');
  const { decodeThroughput } = await import('../../../dist/lib/bench/metrics.js');
  const { loadModel } = await import('../../../dist/lib/model/index.js');
  const { PRESETS } = await import('../../../dist/lib/model/presets.js');
  PRESETS[names[1]] = { ...PRESETS['qwen2.5-0.5b'], architecture: 'llama', attentionBias: false };
  const m = await loadModel(`dummy:${process.argv[3]}`, { device: 'cpu', dtype: 'float32' });
  const params = { temperature: 0, maxTokens: 128, ignoreEos: true };
  await generate(m, [1], { ...params, maxTokens: 8 }); // warm-up (records the decode graph)
  const tps = [];
  for (let i = 0; i < 3; ++i) {
    const [r] = await generate(m, [1], params);
    const t = r.timings;
    tps.push(decodeThroughput([{ firstToken: t.firstToken, finish: t.finish, outputTokens: r.tokenIds.length }]));
  }
  console.log(median(tps).toFixed(2));
  process.exit(0);
}

const { backends } = await import('../../../dist/lib/native.js');
const { parameterCount } = await import('../../../dist/lib/model/tensors.js');
const { presetConfig, PRESETS } = await import('../../../dist/lib/model/presets.js');
PRESETS[names[1]] = { ...PRESETS['qwen2.5-0.5b'], architecture: 'llama', attentionBias: false };
const rounds = Number(process.argv[2] ?? 5);
console.log(`# ${new Date().toISOString()} cpu ${JSON.stringify(backends().cpu)}`);
for (const n of names) console.log(`# ${n}: ${parameterCount(presetConfig(n))} parameters`);
const results = Object.fromEntries(names.map((n) => [n, []]));
const self = fileURLToPath(import.meta.url);
for (let r = 1; r <= rounds; ++r) {
  const order = r % 2 ? names : [...names].reverse();
  const line = [`round ${r}`];
  for (const n of order) {
    const tps = Number(execFileSync(process.execPath, [self, '--one', n], { encoding: 'utf8' }).trim());
    results[n].push(tps);
    line.push(`${n} ${tps.toFixed(2)}`);
  }
  console.log(line.join(' '));
}
const [q, l] = names.map((n) => median(results[n]));
console.log(`median decode tok/s: qwen2.5-0.5b ${q.toFixed(2)}, llama-shaped ${l.toFixed(2)}, ratio ${(q / l).toFixed(3)}`);
