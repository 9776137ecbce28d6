// The benchmark suite: vLLM's metric math on hand-computed timestamps, the workload generators, and a
// short real run whose numbers must agree with each other.
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import {
  computeMetrics,
  parseSlo,
  peakConcurrency,
  percentile,
  type RequestRecord,
  requestLatencies,
  summarize,
} from '../lib/bench/metrics.js';
import { cdf, htmlReport, summaryText } from '../lib/bench/report.js';
import { timedCompletion } from '../lib/bench/http.js';
import { timeLevelsInterleaved } from '../lib/bench/levels-ab.js';
import { runBench } from '../lib/bench/runner.js';
import type { BenchReport } from '../lib/bench/types.js';
import { Limiter, parseRate, poissonArrivals, randomPrompts } from '../lib/bench/workload.js';
import { InferenceEngine } from '../lib/engine/index.js';
import { backends, setCpuIsa } from '../lib/index.js';
import { OpenAIServer } from '../lib/server/index.js';
import { summarizeTrace } from '../lib/profiler.js';
import { expectThrow, skipBecause } from './helpers.js';

const run = promisify(execFile);
const CLI = new URL('../lib/cli.js', import.meta.url).pathname;

const req = (promptTokens: number, arrival: number, tokens: number[]): RequestRecord => ({
  promptTokens,
  outputTokens: tokens.length,
  arrival,
  firstToken: tokens[0]!,
  tokens,
  finish: tokens.at(-1)!,
});

describe('bench metrics (vLLM definitions)', () => {
  it('percentile interpolates linearly between ranks, as numpy does', () => {
    expect(percentile([1, 2, 3, 4], 50)).to.equal(2.5);
    expect(percentile([1, 2, 3, 4], 90)).to.be.closeTo(3.7, 1e-12);
    expect(percentile([1, 2, 3, 4], 99)).to.be.closeTo(3.97, 1e-12);
    expect(percentile([1, 2, 3, 4], 0)).to.equal(1);
    expect(percentile([1, 2, 3, 4], 100)).to.equal(4);
    expect(percentile([7], 99)).to.equal(7);
    expectThrow(() => percentile([], 50), RangeError, /no samples/);
    expectThrow(() => percentile([1], 101), RangeError, /\[0, 100\]/);
  });

  it('summarize gives mean, median and the population standard deviation', () => {
    const s = summarize([9, 2, 4, 4, 5, 4, 7, 5]);
    expect(s).to.include({ count: 8, mean: 5, median: 4.5, std: 2, min: 2, max: 9 });
    expect(summarize([])).to.include({ count: 0, mean: null, p99: null });
  });

  // Three requests on one clock (ms):
  //   A arrives at 0, tokens at 100, 120, 150             TTFT 100, E2E 150, TPOT 50/2 = 25, ITL 20, 30
  //   B arrives at 50, one token at 250                   TTFT 200, E2E 200, no TPOT, no ITL
  //   C arrives at 60, tokens at 160, 170, 180, 190, 260  TTFT 100, E2E 200, TPOT 100/4 = 25, ITL 10, 10, 10, 70
  const runA = [req(10, 0, [100, 120, 150]), req(5, 50, [250]), req(7, 60, [160, 170, 180, 190, 260])];

  it('TTFT, TPOT, ITL and E2E per request', () => {
    expect(requestLatencies(runA[0]!)).to.deep.equal({ ttft: 100, tpot: 25, itl: [20, 30], e2el: 150 });
    expect(requestLatencies(runA[1]!)).to.deep.equal({ ttft: 200, tpot: null, itl: [], e2el: 200 });
    expect(requestLatencies(runA[2]!)).to.deep.equal({ ttft: 100, tpot: 25, itl: [10, 10, 10, 70], e2el: 200 });
    expectThrow(
      () => requestLatencies({ ...runA[0]!, outputTokens: 4 }),
      RangeError,
      /3 token times for 4 output tokens/,
    );
  });

  it('pools and summarises them, and divides totals by the benchmark duration', () => {
    const m = computeMetrics(runA, { start: 0, end: 300 });
    expect(m).to.include({
      completed: 3,
      durationSeconds: 0.3,
      totalInputTokens: 22,
      totalOutputTokens: 9,
      peakConcurrency: 3,
      peakOutputThroughput: 9,
    });
    expect(m.requestThroughput).to.be.closeTo(10, 1e-9);
    expect(m.outputThroughput).to.be.closeTo(30, 1e-9);
    expect(m.totalTokenThroughput).to.be.closeTo(31 / 0.3, 1e-9);
    expect(m.requestGoodput).to.equal(null);
    // TTFT [100, 200, 100]
    expect(m.ttftMs.mean).to.be.closeTo(400 / 3, 1e-9);
    expect(m.ttftMs.median).to.equal(100);
    expect(m.ttftMs.std).to.be.closeTo(Math.sqrt(20000 / 9), 1e-9);
    expect(m.ttftMs.p99).to.be.closeTo(198, 1e-9);
    // TPOT excludes B: [25, 25]
    expect(m.tpotMs).to.include({ count: 2, mean: 25, std: 0 });
    // ITL pooled: [20, 30, 10, 10, 10, 70]
    expect(m.itlMs).to.include({ count: 6, mean: 25, median: 15, max: 70 });
    expect(m.itlMs.p90).to.be.closeTo(50, 1e-9);
    // E2E [150, 200, 200]
    expect(m.e2elMs.mean).to.be.closeTo(550 / 3, 1e-9);
    expect(m.e2elMs.p50).to.equal(200);
  });

  it('defaults the duration to first arrival .. last finish', () => {
    expect(computeMetrics(runA).durationSeconds).to.be.closeTo(0.26, 1e-12);
  });

  it('goodput counts requests that meet every SLO; a one-token request has TPOT 0 there (as vLLM)', () => {
    expect(computeMetrics(runA, { start: 0, end: 300, slo: { ttft: 150 } }).requestGoodput).to.be.closeTo(
      2 / 0.3,
      1e-9,
    );
    expect(computeMetrics(runA, { start: 0, end: 300, slo: { tpot: 20 } }).requestGoodput).to.be.closeTo(1 / 0.3, 1e-9);
    expect(computeMetrics(runA, { start: 0, end: 300, slo: { ttft: 150, e2el: 160 } }).requestGoodput).to.be.closeTo(
      1 / 0.3,
      1e-9,
    );
    expect(parseSlo('ttft:200, tpot:50')).to.deep.equal({ ttft: 200, tpot: 50 });
    expectThrow(() => parseSlo('ttft=200'), RangeError, /key:milliseconds/);
    expectThrow(() => parseSlo('tpot:-1'), RangeError, /positive/);
  });

  it('peak concurrency treats back-to-back requests as not overlapping', () => {
    expect(peakConcurrency([req(1, 0, [10]), req(1, 10, [20]), req(1, 20, [30])])).to.equal(1);
    expect(peakConcurrency([req(1, 0, [10]), req(1, 9, [20])])).to.equal(2);
  });

  it('a CDF keeps its last point at 1 and thins long sample lists', () => {
    expect(cdf([3, 1, 2])).to.deep.equal([
      [1, 1 / 3],
      [2, 2 / 3],
      [3, 1],
    ]);
    const big = cdf(
      Array.from({ length: 10_001 }, (_, i) => i),
      500,
    );
    expect(big.length).to.be.at.most(502);
    expect(big.at(-1)).to.deep.equal([10_000, 1]);
  });
});

describe('bench workload', () => {
  it('Poisson arrivals have the asked mean rate and exponential gaps', () => {
    const rate = 20,
      n = 20_000;
    const t = poissonArrivals(n, rate, 7);
    expect(t[0]).to.equal(0);
    const gaps = t.slice(1).map((x, i) => x - t[i]!);
    expect(gaps.every((g) => g >= 0)).to.equal(true);
    const s = summarize(gaps);
    // Mean 50 ms; the standard error of 20,000 exponential gaps is 0.7%, so 3% is over four of them.
    expect(s.mean!).to.be.closeTo(1000 / rate, (0.03 * 1000) / rate);
    // An exponential's standard deviation equals its mean; its median is ln 2 of it.
    expect(s.std! / s.mean!).to.be.closeTo(1, 0.05);
    expect(s.median! / s.mean!).to.be.closeTo(Math.LN2, 0.05);
    expect(poissonArrivals(5, rate, 7)).to.deep.equal(t.slice(0, 5));
    expect(poissonArrivals(5, rate, 8)).to.not.deep.equal(t.slice(0, 5));
    expect(poissonArrivals(3, Infinity, 1)).to.deep.equal([0, 0, 0]);
    expectThrow(() => poissonArrivals(3, 0, 1), RangeError, /rate/);
    expect(parseRate('inf')).to.equal(Infinity);
    expect(parseRate('2.5')).to.equal(2.5);
    expectThrow(() => parseRate('0'), RangeError, /--request-rate/);
  });

  it('random prompts have the exact length, skip the excluded ids, and repeat with the seed', () => {
    const p = randomPrompts(50, 33, 40, [0, 1, 2], 3);
    expect(p).to.have.length(50);
    for (const ids of p) {
      expect(ids).to.have.length(33);
      expect(ids.every((t) => Number.isInteger(t) && t >= 3 && t < 40)).to.equal(true);
    }
    expect(new Set(p.flat()).size).to.equal(37);
    expect(randomPrompts(50, 33, 40, [0, 1, 2], 3)).to.deep.equal(p);
    expect(randomPrompts(50, 33, 40, [0, 1, 2], 4)).to.not.deep.equal(p);
    expectThrow(() => randomPrompts(1, 0, 40, [], 0), RangeError, /length/);
    expectThrow(() => randomPrompts(1, 2, 2, [0, 1], 0), RangeError, /every token id/);
  });

  it('the limiter never lets more than its limit run at once and runs everything', async () => {
    const limiter = new Limiter(3);
    let now = 0,
      most = 0;
    const done = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limiter.run(async () => {
          most = Math.max(most, ++now);
          await new Promise((r) => setTimeout(r, 1 + (i % 4)));
          --now;
          return i;
        }),
      ),
    );
    expect(done).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
    expect(most).to.equal(3);
    expectThrow(() => new Limiter(0), RangeError, /at least 1/);
  });
});

describe('bench: a short real run on dummy:stories15M', function () {
  let r: BenchReport;
  const tmp = mkdtempSync(join(tmpdir(), 'mini-vllm-bench-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  before(async () => {
    r = await runBench({
      mode: 'all',
      // eager: the profile below checks each op of a decode step (with CPU graphs a decode step is one
      // cpuGraphReplay op, checked in cpu-graph.test.ts)
      engine: { model: 'dummy:stories15M', device: 'cpu', enforceEager: true },
      numPrompts: 8,
      inputLen: 32,
      outputLen: 8,
      batchSize: 2,
      numIters: 2,
      requestRate: Infinity,
      maxConcurrency: [1, 3, Infinity],
      seed: 1,
      warmup: 1,
      profileSteps: 3,
    });
  });

  const checkRun = (
    name: string,
    get: () => { metrics: ReturnType<typeof computeMetrics>; requests: RequestRecord[] },
    n: number,
  ) => {
    it(`${name}: counts, token totals, throughput = tokens / duration, TTFT ≤ E2E`, () => {
      const { metrics: m, requests } = get();
      expect(m.completed).to.equal(n);
      expect(requests).to.have.length(n);
      expect(m.totalInputTokens).to.equal(32 * n);
      expect(m.totalOutputTokens).to.equal(8 * n);
      expect(m.durationSeconds).to.be.greaterThan(0);
      expect(m.outputThroughput).to.be.closeTo(m.totalOutputTokens / m.durationSeconds, 1e-9);
      expect(m.totalTokenThroughput).to.be.closeTo(
        (m.totalInputTokens + m.totalOutputTokens) / m.durationSeconds,
        1e-9,
      );
      expect(m.requestThroughput).to.be.closeTo(n / m.durationSeconds, 1e-9);
      expect(m.ttftMs.count).to.equal(n);
      expect(m.tpotMs.count).to.equal(n);
      expect(m.itlMs.count).to.equal(7 * n);
      for (const q of requests) {
        expect(q.promptTokens).to.equal(32);
        expect(q.outputTokens).to.equal(8);
        expect(q.tokens).to.have.length(8);
        const l = requestLatencies(q);
        expect(l.ttft).to.be.greaterThan(0);
        expect(l.ttft).to.be.at.most(l.e2el);
        expect(q.arrival).to.be.at.least(0);
        expect(q.finish / 1000).to.be.at.most(m.durationSeconds + 1e-9);
        expect(l.itl.every((g) => g >= 0)).to.equal(true);
        // E2E = TTFT + the gaps, and TPOT is their mean.
        expect(l.ttft + l.itl.reduce((a, b) => a + b, 0)).to.be.closeTo(l.e2el, 1e-6);
        expect(l.tpot!).to.be.closeTo((l.e2el - l.ttft) / 7, 1e-9);
      }
      expect(m.e2elMs.max! / 1000).to.be.at.most(m.durationSeconds + 1e-9);
    });
  };
  checkRun('throughput', () => r.throughput!, 8);
  checkRun('latency', () => r.latency!, 4);
  checkRun('serve at concurrency 1', () => r.serve![0]!, 8);
  checkRun('serve at concurrency 3', () => r.serve![1]!, 8);
  checkRun('serve without a limit', () => r.serve![2]!, 8);

  it('serve keeps to its concurrency limit; the throughput run had every request in flight at once', () => {
    expect(r.serve!.map((s) => s.maxConcurrency)).to.deep.equal([1, 3, 'inf']);
    expect(r.serve![0]!.metrics.peakConcurrency).to.equal(1);
    expect(r.serve![1]!.metrics.peakConcurrency).to.be.within(2, 3);
    expect(r.throughput!.metrics.peakConcurrency).to.equal(8);
    // At concurrency 1 requests run one after another: each arrives no earlier than the one before finished.
    const seq = [...r.serve![0]!.requests].sort((a, b) => a.arrival - b.arrival);
    for (let i = 1; i < seq.length; ++i) expect(seq[i]!.arrival).to.be.at.least(seq[i - 1]!.finish);
  });

  it('latency: per-iteration latencies, and the bandwidth floor from weights and the measured bandwidth', () => {
    const l = r.latency!;
    expect(l.iterationLatencyMs.count).to.equal(2);
    expect(l.bandwidthFloor.weightsBytes).to.equal(r.memory!.weightsBytes);
    expect(l.bandwidthFloor.tpotFloorMs).to.be.closeTo(
      l.bandwidthFloor.weightsBytes / (r.bandwidth!.gbPerSecond * 1e6),
      1e-9,
    );
    expect(l.bandwidthFloor.fractionOfFloorAtMedianTpot).to.be.closeTo(
      l.bandwidthFloor.tpotFloorMs / l.metrics.tpotMs.median!,
      1e-12,
    );
  });

  it('memory: weights, the KV pool, blocks at peak, peaks at least what was held', () => {
    const m = r.memory!;
    expect(m.device).to.equal('cpu');
    expect(m.kvCacheBytes).to.equal(m.numBlocks * m.blockSize * m.kvBytesPerToken);
    // stories15M: 6 layers × (K + V) × 288 floats × 4 bytes per token.
    expect(m.kvBytesPerToken).to.equal(6 * 2 * 288 * 4);
    // Eight 40-token sequences of 16-token blocks, all admitted at once: 3 blocks each.
    expect(m.peakUsedBlocks).to.equal(24);
    expect(m.peakDeviceBytes).to.be.at.least(m.weightsBytes + m.kvCacheBytes);
    expect(m.peakProcessRssBytes).to.be.greaterThan(0);
    expect(m.maxFullLengthSequences).to.equal(Math.floor(m.numBlocks / 3));
  });

  it('the profile: the asked steps, each op named with its shapes, inside a step', () => {
    const t = r.trace!;
    const host = t.traceEvents.filter((e) => e.ph === 'X');
    const steps = host.filter((e) => e.name === 'step');
    expect(steps).to.have.length(3);
    expect(steps[0]!.args).to.include({ numSeqs: 2, numTokens: 64, numDecodes: 0 });
    expect(steps[1]!.args).to.include({ numSeqs: 2, numTokens: 2, numDecodes: 2 });
    const names = new Set(host.map((e) => e.name));
    const cpu = r.backend.device === 'cpu';
    for (const op of [
      cpu ? 'embeddingPacked' : 'embedding',
      'rmsNorm',
      'fusedAddRmsNorm',
      cpu ? 'linearPacked' : 'linear',
      'rotaryEmbedding',
      'reshapeAndCache',
      'pagedAttention',
      'siluAndMul',
      'sampleRows',
      'copyFromHost',
      'schedule',
      'forward',
      'sample',
      'update',
    ])
      expect(names.has(op), op).to.equal(true);
    // Per decode step: 6 layers × (qkv, o, gate-up, down) + the lm-head. On the CPU every matrix is packed for its
    // GEMM (linearPacked), the head (the tied embedding) too.
    const decode = steps[1]!;
    const inDecode = (name: string) =>
      host.filter((e) => e.name === name && e.ts! >= decode.ts! && e.ts! <= decode.ts! + decode.dur!);
    const linears = inDecode(cpu ? 'linearPacked' : 'linear');
    expect(linears).to.have.length(6 * 4 + 1);
    if (cpu) expect(inDecode('linear')).to.have.length(0);
    expect(linears.at(-1)!.args).to.deep.include({
      out: 'float32[2, 32000]',
      x: 'float32[2, 288]',
      ...(cpu ? { packed: 'float32[2000, 288, 16]' } : { weight: 'float32[32000, 288]' }),
    });
    // The summary: the two decode steps, slowest op first, the linear layers called 25 times a step.
    const sum = r.profile!.summary;
    expect(sum).to.deep.equal(summarizeTrace(t));
    expect(sum).to.include({ steps: 'decode', numSteps: 2, clock: 'host' });
    const calls = (name: string) => sum.ops.find((o) => o.name === name)?.callsPerStep ?? 0;
    expect(calls('linear') + calls('linearPacked')).to.equal(25);
    expect(sum.ops.find((o) => o.name === 'pagedAttention')!.callsPerStep).to.equal(6);
    for (let i = 1; i < sum.ops.length; ++i) expect(sum.ops[i]!.msPerStep).to.be.at.most(sum.ops[i - 1]!.msPerStep);
    const decodeMs = steps.slice(1).reduce((a, e) => a + e.dur!, 0) / 2 / 1000;
    expect(sum.stepMs).to.be.closeTo(decodeMs, 1e-9);
    expect(sum.ops.reduce((a, o) => a + o.share, 0)).to.be.within(0, 1);
  });

  it('the summary table and the HTML page show every run', () => {
    const text = summaryText(r);
    for (const title of [
      'Throughput Benchmark Result',
      'Latency Benchmark Result',
      'Serving Benchmark Result',
      'Memory',
      'Time to First Token',
      'Inter-token Latency',
      'Profile: 2 decode steps',
    ])
      expect(text).to.contain(title);
    expect(text.match(/Serving Benchmark Result/g)).to.have.length(3);
    const html = htmlReport(r);
    expect(html.match(/<svg /g)).to.have.length(6);
    for (const title of ['TTFT CDF', 'TPOT CDF', 'ITL CDF', 'E2E latency CDF', 'Output throughput vs concurrency'])
      expect(html).to.contain(title);
  });

  it('the CLI writes the table to stdout, the JSON and the HTML, and names a bad flag', async () => {
    const json = join(tmp, 'out.json');
    const { stdout, stderr } = await run(process.execPath, [
      CLI,
      'bench',
      'throughput',
      '--num-prompts',
      '3',
      '--input-len',
      '16',
      '--output-len',
      '4',
      '--warmup',
      '0',
      '--device',
      'cpu',
      '--json',
      json,
      '--slo',
      'ttft:100000',
    ]);
    expect(stdout).to.contain('Throughput Benchmark Result');
    expect(stdout).to.match(/Request goodput \(req\/s\):\s+[0-9.]+/);
    expect(stderr).to.contain('wrote the results');
    const saved = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    expect(saved.throughput!.metrics.completed).to.equal(3);
    expect(saved.throughput!.metrics.requestGoodput).to.be.closeTo(saved.throughput!.metrics.requestThroughput, 1e-9);
    expect(saved.throughput!.requests).to.have.length(3);
    expect(saved.machine.cores).to.be.greaterThan(0);
    expect(saved.config).to.include({ inputLen: 16, outputLen: 4, numPrompts: 3 });
    expect(existsSync(join(tmp, 'out.html'))).to.equal(true);
    for (const [args, pattern] of [
      [['bench', 'throughput', '--request-rate', '0'], /--request-rate/],
      [['bench', 'serve', '--max-concurrency', '2,x'], /positive integers or inf/],
      [['bench', 'nonsense'], /nonsense/],
      [['bench', 'latency', '--input-len', '300', '--output-len', '10', '--warmup', '0'], /max-model-len|context/],
    ] as const) {
      let failed: { code?: number; stderr?: string } | null = null;
      try {
        await run(process.execPath, [CLI, ...args]);
      } catch (e) {
        failed = e as { code?: number; stderr?: string };
      }
      expect(failed, args.join(' ')).to.not.equal(null);
      expect(failed!.code).to.equal(1);
      expect(failed!.stderr).to.match(pattern);
    }
  });
});

describe('bench serve over HTTP (--base-url) against the OpenAI server', function () {
  let engine: InferenceEngine;
  let server: OpenAIServer;
  let url: string;
  before(async () => {
    engine = await InferenceEngine.create({ model: 'dummy:stories15M', device: 'cpu', maxModelLen: 64, seed: 0 });
    server = new OpenAIServer(engine);
    url = (await server.listen('127.0.0.1', 0)).url;
  });
  after(async () => {
    await server?.close();
    await engine?.stop();
  });

  it("times every token from the stream, and the server's own histograms saw the same requests", async () => {
    const ttftCount = async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return Number(/^mini_vllm:time_to_first_token_seconds_count\{[^}]*\} (\d+)$/m.exec(text)?.[1] ?? '0');
    };
    const before = await ttftCount();
    const r = await runBench({
      mode: 'serve',
      engine: { model: 'dummy:stories15M' },
      numPrompts: 6,
      inputLen: 20,
      outputLen: 6,
      batchSize: 1,
      numIters: 1,
      requestRate: 50,
      maxConcurrency: [2],
      seed: 3,
      warmup: 1,
      baseUrl: `${url}/v1`,
    });
    expect(r.target).to.equal(url);
    expect(r.bandwidth).to.equal(null);
    const s = r.serve![0]!;
    expect(s.metrics).to.include({ completed: 6, totalInputTokens: 120, totalOutputTokens: 36 });
    expect(s.metrics.peakConcurrency).to.be.within(1, 2);
    expect(s.metrics.itlMs.count).to.equal(30);
    for (const q of s.requests) {
      const l = requestLatencies(q);
      expect(l.ttft).to.be.greaterThan(0);
      expect(l.ttft + l.itl.reduce((a, b) => a + b, 0)).to.be.closeTo(l.e2el, 1e-6);
    }
    // Warm-up 1 + 6 measured requests reached the engine through the server.
    expect((await ttftCount()) - before).to.equal(7);
    expect(summaryText(r)).to.contain('over HTTP');
  });

  it('--base-url measures serve only, and a dead URL is a clear error', async () => {
    const base = {
      engine: { model: 'dummy:stories15M' },
      numPrompts: 1,
      inputLen: 4,
      outputLen: 2,
      batchSize: 1,
      numIters: 1,
      requestRate: Infinity,
      maxConcurrency: [Infinity],
      seed: 0,
      warmup: 0,
    };
    let thrown: unknown;
    try {
      await runBench({ ...base, mode: 'throughput', baseUrl: url });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).to.be.instanceOf(RangeError);
    expect((thrown as Error).message).to.match(/--base-url measures serve only/);
    thrown = undefined;
    try {
      await runBench({ ...base, mode: 'serve', baseUrl: 'http://127.0.0.1:9/v1' });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).to.be.instanceOf(Error);
  });
});

describe('bench serve: the streamed chunks of other servers', () => {
  /** A server that streams `texts` as completion chunks (the last with `finish`), then a usage chunk of `tokens`. */
  async function fakeServer(texts: string[], lastFinishAlone: boolean, tokens: number, dropFirst = 0) {
    let dropped = 0;
    const server = createServer((req, res) => {
      // a kept-alive connection the server closes as a request arrives: no response at all
      if (dropped < dropFirst) {
        ++dropped;
        req.socket.destroy();
        return;
      }
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const send = (o: unknown): boolean => res.write(`data: ${JSON.stringify(o)}\n\n`);
        texts.forEach((text, i) =>
          send({ choices: [{ text, finish_reason: !lastFinishAlone && i === texts.length - 1 ? 'length' : null }] }),
        );
        if (lastFinishAlone) send({ choices: [{ text: '', finish_reason: 'length' }] });
        send({ choices: [], usage: { prompt_tokens: 3, completion_tokens: tokens } });
        res.end('data: [DONE]\n\n');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { server, target: { baseUrl: `http://127.0.0.1:${port}`, model: 'm' } };
  }
  const params = { maxTokens: 3, seed: 1, ignoreEos: true };

  it("llama-server's last chunk, no text and only the finish reason, is not counted as a token", async () => {
    const { server, target } = await fakeServer([' a', ' b', ' c'], true, 3);
    try {
      const r = await timedCompletion(target, [1, 2, 3], params);
      expect(r.outputTokens).to.equal(3);
      expect(r.tokens).to.have.length(3);
    } finally {
      server.close();
    }
  });

  it('a connection the server closes before answering is tried once more; twice is an error naming why', async () => {
    const once = await fakeServer([' a', ' b', ' c'], false, 3, 1);
    try {
      const r = await timedCompletion(once.target, [1, 2, 3], params);
      expect(r.outputTokens).to.equal(3);
    } finally {
      once.server.close();
    }
    const twice = await fakeServer([' a', ' b', ' c'], false, 3, 2);
    try {
      let message = '';
      await timedCompletion(twice.target, [1, 2, 3], params).catch((e: Error) => (message = e.message));
      expect(message).to.match(/^POST http:\/\/127\.0\.0\.1:\d+\/v1\/completions: fetch failed \(UND_ERR_SOCKET: /);
    } finally {
      twice.server.close();
    }
  });

  it('a server that streams fewer chunks than tokens is still refused, naming both counts', async () => {
    const { server, target } = await fakeServer([' a b', ' c'], false, 3);
    try {
      let message = '';
      await timedCompletion(target, [1, 2, 3], params).catch((e: Error) => (message = e.message));
      expect(message).to.match(/streamed 2 chunks for 3 tokens/);
    } finally {
      server.close();
    }
  });
});

describe('the op benchmark’s level A/B (levels-ab.ts)', () => {
  const isas = backends().cpu.isas.slice(0, 2);
  const atLoad = backends().cpu.isa;
  afterEach(() => setCpuIsa(atLoad));
  const busy = (seconds: number) => {
    const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
    while (process.hrtime.bigint() < end);
  };

  it('times the levels in turns, reversed each round, and each level’s median from its own bursts', function () {
    if (isas.length < 2) skipBecause(this, 'this machine runs one CPU level: there is nothing to take turns');
    const seen: string[] = [];
    // 2 ms a call under the better level, 0.5 ms under the other: the medians must tell them apart
    const run = () => {
      const isa = backends().cpu.isa;
      if (seen.at(-1) !== isa) seen.push(isa);
      busy(isa === isas[0] ? 2e-3 : 0.5e-3);
    };
    const t = timeLevelsInterleaved(run, isas, 4, 0.005);
    expect(t.map((x) => x.samples)).to.deep.equal([4, 4]);
    const [a, b] = isas as [string, string];
    // warm-up a, b; calibration under a; then rounds a b | b a | a b | b a (a level is recorded when it changes: 7
    // turns, where rounds a b | a b | ... would give 10)
    expect(seen).to.deep.equal([a, b, a, b, a, b, a]);
    expect(t[0]!.median).to.be.within(2e-3, 4e-3);
    expect(t[1]!.median).to.be.within(0.5e-3, 1.5e-3);
  });
});

describe('the benchmark scripts: --help and bad options', function () {
  this.timeout(60_000);
  const benchDir = new URL('../lib/bench/', import.meta.url).pathname;
  const scripts = ['ops.bench.js', 'decode.bench.js', 'quant.bench.js', 'structured.bench.js', 'engine-table.js'];
  const runScript = (script: string, arg: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(benchDir, script), arg], (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });
  for (const script of scripts) {
    it(`${script}: --help prints the usage (exit 0); an unknown option, the error and the usage (exit 2)`, async () => {
      const help = await runScript(script, '--help');
      expect(help.code).to.equal(0);
      expect(help.stdout).to.match(/^usage: /);
      const bad = await runScript(script, '--no-such-option');
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.include("Unknown option '--no-such-option'");
      expect(bad.stderr).to.include('usage: ');
      expect(bad.stderr).to.not.match(/\n\s+at /); // no stack trace
      expect(bad.stdout).to.equal('');
    });
  }

  // The repository's other scripts a user may run, from the source tree (they read dist/ where they need it).
  const root = new URL('../../', import.meta.url).pathname;
  const others = readdirSync(join(root, 'bench/scripts'))
    .filter((f) => f.endsWith('.mjs') && f !== 'args.mjs' && f !== 'mutations.mjs')
    .map((f) => `bench/scripts/${f}`);
  const runFile = (file: string, arg: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const sh = file.endsWith('.sh');
      execFile(sh ? 'bash' : process.execPath, [join(root, file), arg], (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });
  it('every script a user may run answers --help; the strict ones refuse an unknown option (exit 2)', async () => {
    expect(others.length).to.be.at.least(10);
    // test:emu and test:arm64 pass every other argument on to mocha or the check program: --help only.
    const passThrough = ['test/emu/run.mjs', 'test/cpu-levels/arm64.mjs'];
    const strict = [
      ...others,
      'csrc/build.mjs',
      'csrc/sources.mjs',
      'bench/gpu-check.sh',
      'bench/gpu-engine.sh',
      'bench/gpu-pack.sh',
    ];
    for (const file of [...strict, ...passThrough]) {
      const help = await runFile(file, '--help');
      expect(help.code, `${file} --help: ${help.stderr}`).to.equal(0);
      expect(help.stdout.trim().length, `${file} --help printed nothing`).to.be.above(40);
    }
    for (const file of strict) {
      const bad = await runFile(file, '--no-such-option');
      expect(bad.code, `${file} --no-such-option`).to.equal(2);
      expect(bad.stderr, file).to.match(/no-such-option/);
      expect(bad.stderr, file).to.not.match(/\n\s+at /);
    }
  });
});
