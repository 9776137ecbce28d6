// Decode speed through the whole engine, measured the way a user would: `mini-vllm generate --json` (worker thread,
// scheduler, runner, sampler, detokenizer) at batch 1 and batch 16, a few runs each, medians reported. Each decode
// step reads every weight once, so weight bytes / step time is compared with the machine's read bandwidth (a
// STREAM-like read on all threads), measured right before each run (the VM's bandwidth drifts by tens of percent).
//   node dist/bench/engine-decode.bench.js [--model dummy:stories110M] [--batches 1,16] [--tokens 128] [--runs 3] [--out dir]
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { backends, EngineCore, loadModel, resolveSamplingParams } from '../lib/index.js';
import { median, readBandwidth } from '../lib/bench/bandwidth.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'dummy:stories110M' },
    batches: { type: 'string', default: '1,16' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});
const CLI = new URL('../lib/cli.js', import.meta.url).pathname;


interface CliJson {
  device: string; dtype: string; batchSize: number; decodeTokensPerSecond: number; outputTokensPerSecond: number;
  memory: { weightsBytes: number; kvCacheBytes: number };
  results: { tokenIds: number[]; ttftMs: number; tpotMs: number }[];
}

const readBefore = readBandwidth();
const rows = [];
const log: string[] = [];
for (const batch of values.batches.split(',').map(Number)) {
  const args = [CLI, 'generate', '--json', '-m', values.model, '--device', 'cpu', '-t', '0', '--ignore-eos', '-n', values.tokens,
    '--batch-size', String(batch), '--prompt', 'Once upon a time'];
  const runs: CliJson[] = [];
  const bandwidths: number[] = [];
  for (let r = 0; r < Number(values.runs); ++r) {
    bandwidths.push(readBandwidth(3));
    const out = JSON.parse(execFileSync(process.execPath, args, { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] }).toString()) as CliJson;
    runs.push(out);
  }
  const weights = runs[0]!.memory.weightsBytes;
  // every decode step reads the weights once for the whole batch
  const weightGBps = runs.map((r) => (weights * r.decodeTokensPerSecond) / batch / 1e9);
  rows.push({
    model: values.model, batch, outputTokens: Number(values.tokens), runs: runs.length, dtype: runs[0]!.dtype,
    decodeTokensPerSecond: median(runs.map((r) => r.decodeTokensPerSecond)), decodeTokensPerSecondAll: runs.map((r) => r.decodeTokensPerSecond),
    medianTpotMs: median(runs.map((r) => median(r.results.map((x) => x.tpotMs)))), ttftMs: median(runs.map((r) => median(r.results.map((x) => x.ttftMs)))),
    weightsBytes: weights, weightReadGBps: median(weightGBps), readGBpsBeforeEach: bandwidths,
    ofReadBandwidth: median(weightGBps.map((g, i) => g / bandwidths[i]!)),
  });
  log.push(`mini-vllm ${args.slice(1).join(' ')}  (x${runs.length})`);
}
/**
 * Where a decode step's time goes, in-process (no worker, no detokenizer): EngineCore.step, of which the forward
 * pass and the sampler, as medians over 40 steps after 8 warm-up steps.
 */
async function breakdown(batch: number) {
  const m = await loadModel(values.model, { device: 'cpu' });
  const core = EngineCore.fromLoaded(m, { maxModelLen: 256 });
  const model = m.model;
  const forward = model.forward.bind(model);
  let fwd = 0;
  model.forward = (input, kv) => {
    const t = performance.now();
    const out = forward(input, kv);
    fwd += performance.now() - t;
    return out;
  };
  try {
    const params = resolveSamplingParams({ temperature: 0, maxTokens: 100, ignoreEos: true });
    for (let i = 0; i < batch; ++i) core.add({ requestId: String(i), promptTokenIds: [1, 400, 500, 600], params });
    for (let i = 0; i < 8; ++i) core.step();
    const step: number[] = [], forwardMs: number[] = [];
    for (let i = 0; i < 40; ++i) {
      fwd = 0;
      const t = performance.now();
      core.step();
      step.push(performance.now() - t);
      forwardMs.push(fwd);
    }
    return { batch, stepMs: median(step), forwardMs: median(forwardMs), restMs: median(step.map((x, i) => x - forwardMs[i]!)), weightsBytes: model.weightsBytes };
  } finally {
    core.dispose();
    model.dispose();
  }
}
const steps = [];
for (const batch of values.batches.split(',').map(Number)) steps.push(await breakdown(batch));
const readAfter = readBandwidth();
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, threads: backends().cpu.threads, simd: backends().cpu.simd };
const result = { machine, readGBps: { before: readBefore, after: readAfter }, rows, inProcessStep: steps };
const lines = [
  `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.threads} kernel threads, ${machine.simd}`,
  `read bandwidth (STREAM-like, all threads): ${readBefore.toFixed(1)} GB/s before, ${readAfter.toFixed(1)} GB/s after`,
  ...log,
  '',
  'medians over the runs; "of read bandwidth": the median over runs of weight GB/s / the read GB/s measured just before that run',
  '| model | batch | decode tok/s | median TPOT ms | TTFT ms | weight read GB/s | read GB/s per run | of read bandwidth |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...result.rows.map((r) => `| ${r.model} (${r.dtype}) | ${r.batch} | ${r.decodeTokensPerSecond.toFixed(1)} | ${r.medianTpotMs.toFixed(2)} | ${r.ttftMs.toFixed(1)} | ${r.weightReadGBps.toFixed(1)} | ${r.readGBpsBeforeEach.map((g) => g.toFixed(1)).join(' ')} | ${(100 * r.ofReadBandwidth).toFixed(0)}% |`),
  '',
  'in-process EngineCore.step (no worker, no detokenizer), medians of 40 decode steps: the forward pass, and the rest (scheduling, inputs, sampling)',
  '| batch | step ms | forward ms | rest ms | forward weight read GB/s |',
  '| --- | --- | --- | --- | --- |',
  ...steps.map((b) => `| ${b.batch} | ${b.stepMs.toFixed(2)} | ${b.forwardMs.toFixed(2)} | ${b.restMs.toFixed(2)} | ${(b.weightsBytes / b.forwardMs / 1e6).toFixed(1)} |`),
];
process.stdout.write(`${lines.join('\n')}\n`);
if (values.out) {
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, 'engine-decode.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(values.out, 'engine-decode.md'), `${lines.join('\n')}\n`);
}
