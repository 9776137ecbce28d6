// Decode speed through the whole engine, measured the way a user would: `mini-vllm generate --json` (worker thread,
// scheduler, runner, sampler, detokenizer) at batch 1 and batch 16, a few runs each, medians reported. Each decode
// step reads every weight once, so weight bytes / step time is compared with the machine's read bandwidth (a
// STREAM-like read on all threads), measured right before each run (the VM's bandwidth drifts by tens of percent).
// (Per-request TTFT / TPOT / ITL under load, and the TPOT floor a model's weights set, come from `mini-vllm bench`.)
// --isa runs it under each CPU level given ("all": every level this machine runs; csrc/cpu/level.h), one row per level.
//   npm run bench:decode -- [--model dummy:stories110M] [--batches 1,16] [--tokens 128] [--runs 3] [--isa all]
//                           [--out dir]
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median, readBandwidth } from './bandwidth.js';
import { gitCommit, machineInfo, machineLine } from './machine.js';
import { EngineCore } from '../engine/index.js';
import { type LlamaConfig, loadModel } from '../model/index.js';
import { backends } from '../native.js';
import { setCpuIsa } from '../runtime.js';
import { resolveSamplingParams } from '../sampling/params.js';
import { native } from '../native.js';
import { benchArgs } from './args.js';

const USAGE = `usage: npm run bench:decode -- [--model dummy:stories110M] [--batches 1,16] [--tokens 128] [--runs 3]
                              [--isa all|<level>,...] [--out dir]
  decode speed through \`mini-vllm generate --json\`, and the in-process step beside the read-bandwidth roofline`;

const { values } = benchArgs(USAGE, {
  options: {
    model: { type: 'string', default: 'dummy:stories110M' },
    batches: { type: 'string', default: '1,16' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string', default: '3' },
    out: { type: 'string' },
    isa: { type: 'string' },
  },
});
const loadIsa = backends().cpu.isa;
const isas = !values.isa ? [loadIsa] : values.isa === 'all' ? backends().cpu.isas : values.isa.split(',');
const CLI = new URL('../cli.js', import.meta.url).pathname;

interface CliJson {
  device: string;
  dtype: string;
  batchSize: number;
  decodeTokensPerSecond: number;
  outputTokensPerSecond: number;
  memory: { weightsBytes: number; kvCacheBytes: number };
  results: { tokenIds: number[]; ttftMs: number; tpotMs: number }[];
}

const readBefore = readBandwidth();
const rows = [];
const log: string[] = [];
for (const isa of isas)
  for (const batch of values.batches.split(',').map(Number)) {
    const args = [
      CLI,
      'generate',
      '--json',
      '-m',
      values.model,
      '--device',
      'cpu',
      '-t',
      '0',
      '--ignore-eos',
      '-n',
      values.tokens,
      '--batch-size',
      String(batch),
      '--prompt',
      'Once upon a time',
    ];
    const runs: CliJson[] = [];
    const bandwidths: number[] = [];
    for (let r = 0; r < Number(values.runs); ++r) {
      bandwidths.push(readBandwidth(3));
      const out = JSON.parse(
        execFileSync(process.execPath, args, {
          maxBuffer: 1 << 28,
          stdio: ['ignore', 'pipe', 'ignore'],
          env: { ...process.env, MINI_VLLM_CPU_ISA: isa },
        }).toString(),
      ) as CliJson;
      runs.push(out);
    }
    const weights = runs[0]!.memory.weightsBytes;
    // every decode step reads the weights once for the whole batch
    const weightGBps = runs.map((r) => (weights * r.decodeTokensPerSecond) / batch / 1e9);
    rows.push({
      model: values.model,
      isa,
      batch,
      outputTokens: Number(values.tokens),
      runs: runs.length,
      dtype: runs[0]!.dtype,
      decodeTokensPerSecond: median(runs.map((r) => r.decodeTokensPerSecond)),
      decodeTokensPerSecondAll: runs.map((r) => r.decodeTokensPerSecond),
      medianTpotMs: median(runs.map((r) => median(r.results.map((x) => x.tpotMs)))),
      ttftMs: median(runs.map((r) => median(r.results.map((x) => x.ttftMs)))),
      weightsBytes: weights,
      weightReadGBps: median(weightGBps),
      readGBpsBeforeEach: bandwidths,
      ofReadBandwidth: median(weightGBps.map((g, i) => g / bandwidths[i]!)),
    });
    log.push(`MINI_VLLM_CPU_ISA=${isa} mini-vllm ${args.slice(1).join(' ')}  (x${runs.length})`);
  }
/** FLOPs of one decode token through the linear layers (2 per weight: q, k, v, o, gate, up, down, the head). */
function linearFlopsPerToken(c: LlamaConfig): number {
  const q = c.numHeads * c.headDim,
    kv = c.numKvHeads * c.headDim;
  const perLayer = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
  return 2 * (c.numLayers * perLayer + c.vocabSize * c.hiddenSize);
}

/**
 * Where a decode step's time goes, in-process (no worker, no detokenizer): EngineCore.step, of which the forward
 * pass, as medians over 40 profiled steps after 8 warm-up steps (the profiler's own 'step' and 'forward' spans); and
 * the step's roofline, max(weights / read bandwidth, linear FLOPs / FMA peak), from limits measured beside it.
 */
async function breakdown(batch: number, isa: string) {
  setCpuIsa(isa);
  const m = await loadModel(values.model, { device: 'cpu' });
  const core = EngineCore.fromLoaded(m, { maxModelLen: 256 });
  try {
    const params = resolveSamplingParams({ temperature: 0, maxTokens: 100, ignoreEos: true });
    for (let i = 0; i < batch; ++i) core.add({ requestId: String(i), promptTokenIds: [1, 400, 500, 600], params });
    for (let i = 0; i < 8; ++i) core.step();
    core.startProfile(40);
    for (let i = 0; i < 40; ++i) core.step();
    const spans = core.stopProfile().traceEvents.filter((e) => e.ph === 'X' && e.tid === 1);
    const step = spans.filter((e) => e.name === 'step').map((e) => e.dur! / 1000);
    const forward = spans.filter((e) => e.name === 'forward').map((e) => e.dur! / 1000);
    const readGBps = readBandwidth(3);
    const peakGflops = native.fmaPeak(0.5);
    const bytesMs = m.model.weightsBytes / readGBps / 1e6;
    const flopsMs = (batch * linearFlopsPerToken(m.model.config)) / peakGflops / 1e6;
    const stepMs = median(step);
    return {
      isa,
      batch,
      stepMs,
      forwardMs: median(forward),
      restMs: median(step.map((x, i) => x - forward[i]!)),
      weightsBytes: m.model.weightsBytes,
      readGBps,
      peakGflops,
      rooflineMs: Math.max(bytesMs, flopsMs),
      bound: bytesMs >= flopsMs ? 'bandwidth' : 'FMA',
      overRoofline: stepMs / Math.max(bytesMs, flopsMs),
    };
  } finally {
    core.dispose();
    m.model.dispose();
    setCpuIsa(loadIsa);
  }
}
const steps = [];
for (const isa of isas)
  for (const batch of values.batches.split(',').map(Number)) steps.push(await breakdown(batch, isa));
const readAfter = readBandwidth();
const machine = machineInfo();
const commit = gitCommit();
const result = { commit, machine, readGBps: { before: readBefore, after: readAfter }, rows, inProcessStep: steps };
const lines = [
  `mini-vllm decode benchmark, commit ${commit ?? 'unknown'}, ${new Date().toISOString()}`,
  `machine: ${machineLine(machine)}`,
  `read bandwidth (STREAM-like, all threads): ${readBefore.toFixed(1)} GB/s before, ${readAfter.toFixed(1)} GB/s after`,
  ...log,
  '',
  'medians over the runs; "of read bandwidth": the median over runs of weight GB/s / the read GB/s measured just ' +
    'before that run',
  '| model | CPU level | batch | decode tok/s | median TPOT ms | TTFT ms | weight read GB/s | read GB/s per run ' +
    '| of read bandwidth |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...result.rows.map(
    (r) =>
      `| ${r.model} (${r.dtype}) | ${r.isa} | ${r.batch} | ${r.decodeTokensPerSecond.toFixed(1)} ` +
      `| ${r.medianTpotMs.toFixed(2)} | ${r.ttftMs.toFixed(1)} | ${r.weightReadGBps.toFixed(1)} | ` +
      `${r.readGBpsBeforeEach.map((g) => g.toFixed(1)).join(' ')} | ${(100 * r.ofReadBandwidth).toFixed(0)}% |`,
  ),
  '',
  'in-process EngineCore.step (no worker, no detokenizer), medians of 40 profiled decode steps: the forward pass, ' +
    'and the rest (scheduling, inputs, sampling)',
  '(roofline: max(weights / the read GB/s, linear FLOPs / the FMA peak), both measured right after the steps)',
  '| CPU level | batch | step ms | forward ms | rest ms | forward weight read GB/s | read GB/s | FMA GFLOP/s ' +
    '| roofline ms | bound | step / roofline |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...steps.map(
    (b) =>
      `| ${b.isa} | ${b.batch} | ${b.stepMs.toFixed(2)} | ${b.forwardMs.toFixed(2)} | ${b.restMs.toFixed(2)} | ` +
      `${(b.weightsBytes / b.forwardMs / 1e6).toFixed(1)} | ${b.readGBps.toFixed(1)} | ${b.peakGflops.toFixed(0)} | ` +
      `${b.rooflineMs.toFixed(2)} | ${b.bound} | ${b.overRoofline.toFixed(2)}x |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
if (values.out) {
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, 'decode.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(values.out, 'decode.md'), `${lines.join('\n')}\n`);
}
