// Quantised weights through the engine, in-process (EngineCore.step: the forward pass, sampling and scheduling, no
// worker): a 128-token prefill and batch-1 decode steps of one model in float32 and quantised at load (q8_0, q4_0)
// or from a GGUF the quantize command wrote (Q4_K_M). Each decode step reads every weight once (the embedding only
// its rows), so the weights' bytes / step time is compared with the read bandwidth measured in the same run.
//   node dist/lib/bench/quant.bench.js [--model dummy:stories110M] [--steps 40] [--out dir]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, readBandwidth } from './bandwidth.js';
import { gitCommit, machineInfo, machineLine } from './machine.js';
import { EngineCore } from '../engine/index.js';
import { loadModel } from '../model/index.js';
import { resolveSamplingParams } from '../sampling/params.js';
import type { LoadOptions } from '../model/index.js';
import { quantizeModel } from '../model/quantize-model.js';
import { benchArgs } from './args.js';

const USAGE = `usage: node dist/lib/bench/quant.bench.js [--model dummy:stories110M] [--steps 40] [--out dir]
  a model in float32, Q8_0, Q4_0 and Q4_K_M: prefill and batch-1 decode steps, weight GB/s beside the read bandwidth`;

const { values } = benchArgs(USAGE, {
  options: {
    model: { type: 'string', default: 'dummy:stories110M' },
    steps: { type: 'string', default: '40' },
    out: { type: 'string' },
  },
});
const tmp = mkdtempSync(join(tmpdir(), 'mini-vllm-quant-bench-'));
const q4km = join(tmp, 'q4_k_m.gguf');
quantizeModel(values.model, q4km, 'q4_k_m');

const variants: { label: string; model: string; opts: LoadOptions }[] = [
  { label: 'float32', model: values.model, opts: {} },
  { label: 'Q8_0 (quantization q8_0)', model: values.model, opts: { quantization: 'q8_0' } },
  { label: 'Q4_0 (quantization q4_0)', model: values.model, opts: { quantization: 'q4_0' } },
  { label: 'Q4_K_M (quantize --type q4_k_m)', model: q4km, opts: {} },
];
const steps = Number(values.steps);
const rows = [];
for (const v of variants) {
  const m = await loadModel(v.model, { device: 'cpu', dtype: 'float32', ...v.opts });
  const core = EngineCore.fromLoaded(m, { maxModelLen: 512, enablePrefixCaching: false });
  const vocab = m.config.vocabSize;
  const prompt = (seed: number) => [
    1,
    ...Array.from({ length: 127 }, (_, i) => 3 + ((i * 7919 + seed * 104729) % (vocab - 3))),
  ];
  try {
    // prefill: 5 prompts of 128 tokens, one step each (the first step of a request is its whole prompt)
    const prefill: number[] = [];
    for (let r = 0; r < 6; ++r) {
      const params = resolveSamplingParams({ temperature: 0, maxTokens: 1, ignoreEos: true });
      core.add({ requestId: `p${r}`, promptTokenIds: prompt(r), params });
      const t0 = performance.now();
      core.step();
      if (r > 0) prefill.push(performance.now() - t0);
      while (core.hasUnfinished) core.step();
    }
    // decode at batch 1
    const params = resolveSamplingParams({ temperature: 0, maxTokens: steps + 20, ignoreEos: true });
    core.add({ requestId: 'd', promptTokenIds: [1, 400, 500, 600], params });
    for (let i = 0; i < 8; ++i) core.step();
    const bw = readBandwidth(3);
    const decode: number[] = [];
    for (let i = 0; i < steps; ++i) {
      const t0 = performance.now();
      core.step();
      decode.push(performance.now() - t0);
    }
    const stepMs = median(decode);
    // bytes a decode step reads: every weight, the embedding table only where it is also the classifier (tied)
    const w = m.model.weights;
    const embedRead = w.lmHead === w.embedding ? 0 : w.embedding.byteLength;
    const bytes = m.model.weightsBytes - embedRead;
    rows.push({
      variant: v.label,
      weightsBytes: m.model.weightsBytes,
      bytesPerStep: bytes,
      prefill128Ms: median(prefill),
      prefillTokensPerSecond: 128 / (median(prefill) / 1000),
      decodeStepMs: stepMs,
      decodeTokensPerSecond: 1000 / stepMs,
      readGBps: bw,
      floorMs: (bytes / (bw * 1e9)) * 1000,
      ofReadBandwidth: bytes / (stepMs / 1000) / 1e9 / bw,
    });
    console.error(`${v.label}: prefill ${median(prefill).toFixed(1)} ms, decode ${stepMs.toFixed(2)} ms`);
  } finally {
    core.dispose();
    m.model.dispose();
  }
}
rmSync(tmp, { recursive: true, force: true });
const machine = machineInfo();
const commit = gitCommit();
const lines = [
  `mini-vllm quantised weights, ${values.model}, commit ${commit ?? 'unknown'}, ${new Date().toISOString()}`,
  `machine: ${machineLine(machine)}`,
  `in-process EngineCore.step medians: prefill of a 128-token prompt (5 prompts), batch-1 decode (${steps} steps)`,
  '"floor": the step\'s weight bytes at the read bandwidth measured just before the decode steps',
  '',
  '| weights | MB in memory | prefill 128 ms | prefill tok/s | decode step ms | decode tok/s | floor ms | ' +
    'of read bandwidth |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.variant} | ${(r.weightsBytes / 1e6).toFixed(1)} | ${r.prefill128Ms.toFixed(1)} | ` +
      `${r.prefillTokensPerSecond.toFixed(0)} | ${r.decodeStepMs.toFixed(2)} | ` +
      `${r.decodeTokensPerSecond.toFixed(1)} | ` +
      `${r.floorMs.toFixed(2)} (${r.readGBps.toFixed(1)} GB/s) | ${(100 * r.ofReadBandwidth).toFixed(0)}% |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
if (values.out) {
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, 'quant-table.md'), `${lines.join('\n')}\n`);
  writeFileSync(join(values.out, 'quant-table.json'), JSON.stringify({ commit, machine, rows }, null, 2));
}
