// The engine benchmarks, run through InferenceEngine (the same per-request timestamps the library's callers and the
// HTTP server see):
//   throughput  every prompt at once (vLLM's offline throughput benchmark);
//   latency     a batch of --batch-size prompts at once, --num-iters times (vLLM's latency benchmark);
//   serve       prompts arriving as a Poisson process at --request-rate, at most --max-concurrency in flight, once per
//               concurrency given (vLLM's serving benchmark);
//   memory      weights, KV pool, peaks, over the throughput workload.
import { DEFAULT_MODEL, type EngineStats, type GenerationResult, InferenceEngine } from '../engine/index.js';
import { type LlamaConfig, loadTokenizer, parameterCount } from '../model/index.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { backends } from '../native.js';
import { summarizeTrace, type Trace } from '../profiler.js';
import { deviceMemory } from '../runtime.js';
import type { SamplingParams } from '../sampling/params.js';
import { VERSION } from '../version.js';
import { memoryBandwidth } from './bandwidth.js';
import { describeServer, timedCompletion } from './http.js';
import { gitCommit, machineInfo } from './machine.js';
import type { BenchMode, BenchOptions, BenchReport, MemoryResult, RunResult, ServeResult } from './types.js';
import { computeMetrics, type RequestRecord, requestRecord, type Slo, summarize } from './metrics.js';
import { Limiter, poissonArrivals, randomPrompts } from './workload.js';

const infOr = (v: number): number | 'inf' => (v === Infinity ? 'inf' : v);

/** Records with times made relative to the run's start. */
function rebase(recs: Array<RequestRecord & { requestId: string }>, start: number): RunResult['requests'] {
  return recs.map((r) => ({
    ...r,
    arrival: r.arrival - start,
    firstToken: r.firstToken - start,
    tokens: r.tokens.map((t) => t - start),
    finish: r.finish - start,
  }));
}

const records = (results: GenerationResult[], start: number) => rebase(results.map(requestRecord), start);

function checkOptions(o: BenchOptions): void {
  const pos = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`bench: ${name} must be a positive integer, got ${v}`);
  };
  pos('--num-prompts', o.numPrompts);
  pos('--input-len', o.inputLen);
  pos('--output-len', o.outputLen);
  pos('--batch-size', o.batchSize);
  pos('--num-iters', o.numIters);
  if (!Number.isInteger(o.warmup) || o.warmup < 0)
    throw new RangeError(`bench: --warmup must be a non-negative integer, got ${o.warmup}`);
  if (!(o.requestRate > 0)) throw new RangeError(`bench: --request-rate must be positive or inf, got ${o.requestRate}`);
  if (
    o.maxConcurrency.length === 0 ||
    o.maxConcurrency.some((c) => !(c >= 1) || (c !== Infinity && !Number.isInteger(c)))
  )
    throw new RangeError(
      `bench: --max-concurrency must be positive integers or inf, got ${o.maxConcurrency.join(',')}`,
    );
  if (o.profileSteps !== undefined) pos('--profile-steps', o.profileSteps);
}

function configOf(o: BenchOptions, engine: Record<string, unknown>): BenchReport['config'] {
  return {
    mode: o.mode,
    numPrompts: o.numPrompts,
    inputLen: o.inputLen,
    outputLen: o.outputLen,
    batchSize: o.batchSize,
    numIters: o.numIters,
    requestRate: infOr(o.requestRate),
    maxConcurrency: o.maxConcurrency.map(infOr),
    seed: o.seed,
    warmup: o.warmup,
    ...(o.slo ? { slo: o.slo } : {}),
    ...(o.profileSteps ? { profileSteps: o.profileSteps } : {}),
    ...(o.baseUrl ? { baseUrl: o.baseUrl } : {}),
    engine,
  };
}

/** Prompts of the benchmark's shape from a vocabulary, each call with a new seed. */
function promptSource(o: BenchOptions, config: LlamaConfig, tokenizer: Tokenizer): (n: number) => number[][] {
  const exclude = new Set<number>(
    [config.bosTokenId, ...config.eosTokenIds, ...tokenizer.eosTokenIds].filter(
      (t): t is number => typeof t === 'number',
    ),
  );
  let seedOffset = 0;
  return (n) => randomPrompts(n, o.inputLen, config.vocabSize, exclude, o.seed + 7919 * ++seedOffset);
}

/** A report's header: the tool, the run's config and target, this machine and build, and the backend that ran it. */
function reportOf(
  o: BenchOptions,
  target: string,
  config: BenchReport['config'],
  run: { backend: Pick<BenchReport['backend'], 'device' | 'dtype' | 'model' | 'parameters'> } & Pick<
    BenchReport,
    'bandwidth' | 'loadSeconds'
  >,
): BenchReport {
  const be = backends();
  const cudaArchs = target !== 'engine' || !be.cuda.compiled ? null : be.cuda.archs;
  return {
    tool: 'mini-vllm bench',
    version: VERSION,
    date: new Date().toISOString(),
    commit: gitCommit(),
    mode: o.mode,
    target,
    config,
    machine: machineInfo(),
    ...run,
    backend: { ...run.backend, simd: be.cpu.simd, threads: be.cpu.threads, cudaArchs },
  };
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  checkOptions(o);
  if (o.baseUrl !== undefined) return runHttpBench(o);
  const log = o.log ?? (() => {});
  const maxModelLen = o.engine.maxModelLen ?? o.inputLen + o.outputLen;
  if (o.inputLen + o.outputLen > maxModelLen)
    throw new RangeError(
      `bench: --input-len + --output-len (${o.inputLen + o.outputLen}) is over --max-model-len (${maxModelLen})`,
    );
  const engine = await InferenceEngine.create({ ...o.engine, maxModelLen, seed: o.seed });
  try {
    const { config } = engine;
    const device = engine.options.device;
    log(
      `bench: ${engine.options.model} (${(parameterCount(config) / 1e6).toFixed(1)}M parameters) on ${device} in ` +
        `${engine.dtype}, loaded in ${engine.loadSeconds.toFixed(2)} s`,
    );
    const bandwidth = memoryBandwidth(device);
    log(`bench: ${bandwidth.kind}: ${bandwidth.gbPerSecond.toFixed(1)} GB/s`);

    const prompts = promptSource(o, config, engine.tokenizer);
    // vLLM's benchmark sampling: temperature 1, top-p 1, EOS ignored so every output is exactly --output-len long.
    const params: SamplingParams = { temperature: 1, topP: 1, ignoreEos: true, maxTokens: o.outputLen, seed: o.seed };

    if (o.warmup > 0) {
      log(`bench: warm-up, ${o.warmup} request(s)`);
      await engine.generate(prompts(o.warmup), params);
    }

    const report = reportOf(o, 'engine', configOf(o, { ...engine.options }), {
      backend: { device, dtype: engine.dtype, model: engine.options.model, parameters: parameterCount(config) },
      bandwidth,
      loadSeconds: engine.loadSeconds,
    });
    const wants = (m: BenchMode) => o.mode === m || o.mode === 'all';

    if (wants('throughput') || wants('memory')) {
      // memory runs the throughput workload, so it reports that run's throughput as well
      log(
        `bench ${wants('throughput') ? 'throughput' : 'memory (and throughput)'}: ${o.numPrompts} prompts of ` +
          `${o.inputLen} tokens, ${o.outputLen} out, all at once`,
      );
      await engine.resetPeaks();
      const batch = prompts(o.numPrompts);
      const start = performance.now();
      const results = await engine.generate(batch, params);
      const end = performance.now();
      const stats = await engine.getStats();
      const requests = records(results, start);
      report.throughput = { metrics: computeMetrics(requests, { start: 0, end: end - start, slo: o.slo }), requests };
      if (wants('memory')) report.memory = memoryResult(stats, engine.options.maxModelLen, device);
    }

    if (wants('latency')) {
      log(`bench latency: batch ${o.batchSize}, ${o.inputLen} in / ${o.outputLen} out, ${o.numIters} iterations`);
      const all: RunResult['requests'] = [];
      const iterations: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < o.numIters; ++i) {
        const batch = prompts(o.batchSize);
        const start = performance.now();
        const results = await engine.generate(batch, params);
        iterations.push(performance.now() - start);
        all.push(...records(results, t0));
      }
      const metrics = computeMetrics(all, { start: 0, end: performance.now() - t0, slo: o.slo });
      const weightsBytes = (await engine.getStats()).memory.weightsBytes;
      const tpotFloorMs = (weightsBytes / (bandwidth.gbPerSecond * 1e9)) * 1000;
      report.latency = {
        metrics,
        requests: all,
        batchSize: o.batchSize,
        iterations: o.numIters,
        iterationLatencyMs: summarize(iterations),
        bandwidthFloor: {
          weightsBytes,
          gbPerSecond: bandwidth.gbPerSecond,
          tpotFloorMs,
          fractionOfFloorAtMedianTpot: metrics.tpotMs.median ? tpotFloorMs / metrics.tpotMs.median : null,
        },
      };
    }

    if (wants('serve')) {
      report.serve = [];
      for (const [k, c] of o.maxConcurrency.entries()) {
        log(
          `bench serve: ${o.numPrompts} requests at ${o.requestRate === Infinity ? 'inf' : o.requestRate} req/s, max ` +
            `concurrency ${infOr(c)}`,
        );
        report.serve.push(
          await serve(
            async (p) => requestRecord(await engine.generate(p, params)),
            prompts(o.numPrompts),
            o.requestRate,
            c,
            o.seed + k,
            o.slo,
          ),
        );
      }
    }

    if (o.profileSteps) {
      log(`bench profile: ${o.profileSteps} steps of batch ${o.batchSize}`);
      await engine.startProfile({ maxSteps: o.profileSteps });
      let trace: Trace;
      try {
        await engine.generate(prompts(o.batchSize), {
          ...params,
          maxTokens: Math.min(o.outputLen, o.profileSteps + 1),
        });
      } finally {
        trace = await engine.stopProfile();
      }
      report.trace = trace;
      report.profile = {
        steps: trace.metadata.steps,
        events: trace.traceEvents.length,
        summary: summarizeTrace(trace),
      };
    }
    report.cudaGraphs = (await engine.getStats()).cudaGraphs;
    return report;
  } finally {
    await engine.stop();
  }
}

function memoryResult(stats: EngineStats, maxModelLen: number, device: string): MemoryResult {
  const m = stats.memory;
  const perToken = m.kvCacheBytes / (m.numBlocks * m.blockSize);
  let deviceUsedBytes: number | null = null;
  if (device === 'cuda') {
    const { free, total } = deviceMemory(0);
    deviceUsedBytes = total - free;
  }
  return {
    device,
    weightsBytes: m.weightsBytes,
    kvCacheBytes: m.kvCacheBytes,
    kvBytesPerToken: perToken,
    blockSize: m.blockSize,
    numBlocks: m.numBlocks,
    maxFullLengthSequences: Math.floor(m.numBlocks / Math.ceil(maxModelLen / m.blockSize)),
    peakUsedBlocks: m.peakUsedBlocks,
    peakDeviceBytes: m.peakBytes,
    peakProcessRssBytes: process.resourceUsage().maxRSS * 1024,
    deviceUsedBytes,
  };
}

async function serve(
  send: (prompt: number[]) => Promise<RequestRecord & { requestId: string }>,
  batch: number[][],
  rate: number,
  maxConcurrency: number,
  seed: number,
  slo: Slo | undefined,
): Promise<ServeResult> {
  const offsets = poissonArrivals(batch.length, rate, seed);
  const limiter = new Limiter(maxConcurrency === Infinity ? batch.length : maxConcurrency);
  const start = performance.now();
  const results = await Promise.all(
    batch.map(async (prompt, i) => {
      const wait = start + offsets[i]! - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      return limiter.run(() => send(prompt));
    }),
  );
  const end = performance.now();
  const requests = rebase(results, start);
  return {
    requestRate: infOr(rate),
    maxConcurrency: infOr(maxConcurrency),
    metrics: computeMetrics(requests, { start: 0, end: end - start, slo }),
    requests,
  };
}

/** The serving benchmark against a running server over HTTP. */
async function runHttpBench(o: BenchOptions): Promise<BenchReport> {
  if (o.mode !== 'serve')
    throw new RangeError(
      `bench: --base-url measures serve only (the other modes need the engine in this process), got ${o.mode}`,
    );
  if (o.profileSteps) throw new RangeError('bench: --profile needs the engine in this process, not --base-url');
  const log = o.log ?? (() => {});
  const baseUrl = o.baseUrl!.replace(/\/+$/, '').replace(/\/v1$/, '');
  const info = await describeServer({ baseUrl, ...(o.apiKey ? { apiKey: o.apiKey } : {}) });
  const model = o.engine.model ?? DEFAULT_MODEL;
  const { config, tokenizer } = await loadTokenizer(model, o.engine.tokenizer ? { tokenizer: o.engine.tokenizer } : {});
  if (info.maxModelLen !== null && o.inputLen + o.outputLen > info.maxModelLen)
    throw new RangeError(
      `bench: --input-len + --output-len (${o.inputLen + o.outputLen}) is over the server's max_model_len ` +
        `(${info.maxModelLen})`,
    );
  log(
    `bench: ${baseUrl} serves "${info.model}"; prompts drawn from ${model}'s vocabulary (${config.vocabSize} tokens)`,
  );
  const prompts = promptSource(o, config, tokenizer);
  const target = { baseUrl, model: info.model, ...(o.apiKey ? { apiKey: o.apiKey } : {}) };
  const params = { maxTokens: o.outputLen, seed: o.seed, ignoreEos: true };
  let n = 0;
  const send = async (p: number[]) => ({ requestId: `http-${++n}`, ...(await timedCompletion(target, p, params)) });
  if (o.warmup > 0) {
    log(`bench: warm-up, ${o.warmup} request(s)`);
    await Promise.all(prompts(o.warmup).map(send));
  }
  const report = reportOf(
    o,
    baseUrl,
    configOf(o, { model, servedModelName: info.model, maxModelLen: info.maxModelLen }),
    {
      backend: { device: 'http', dtype: 'unknown', model: info.model, parameters: parameterCount(config) },
      bandwidth: null,
      loadSeconds: null,
    },
  );
  report.serve = [];
  for (const [k, c] of o.maxConcurrency.entries()) {
    log(
      `bench serve: ${o.numPrompts} requests to ${baseUrl} at ${infOr(o.requestRate)} req/s, max concurrency ` +
        `${infOr(c)}`,
    );
    report.serve.push(await serve(send, prompts(o.numPrompts), o.requestRate, c, o.seed + k, o.slo));
  }
  return report;
}
