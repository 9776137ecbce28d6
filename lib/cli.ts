#!/usr/bin/env node
// The mini-vllm command line: `generate`, `serve`, `bench` and `info`.
import { fileURLToPath } from 'node:url';
import { SingleBar } from 'cli-progress';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { isDevice, isFloatDType } from './dtype.js';
import { type Slo, parseSlo } from './bench/metrics.js';
import { htmlReport, summaryText } from './bench/report.js';
import { BENCH_MODES, type BenchMode, runBench } from './bench/runner.js';
import { parseRate } from './bench/workload.js';
import { DEFAULT_MODEL, type EngineOptions, type GenerationResult, InferenceEngine } from './engine/index.js';
import { type LoadProgress, parameterCount, PRESETS } from './model/index.js';
import { backends } from './native.js';
import { serve } from './server/index.js';
import { setNumThreads } from './runtime.js';
import type { SamplingParams } from './sampling/params.js';
import { VERSION } from './version.js';


const log = (msg: string) => process.stderr.write(`${msg}\n`);

function num(kind: 'int' | 'float') {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n))) throw new InvalidArgumentError(`expected ${kind === 'int' ? 'an integer' : 'a number'}, got "${v}"`);
    return n;
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

function intList(v: string): number[] {
  return v.split(',').map((p) => {
    const n = Number(p.trim());
    if (p.trim() === '' || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected positive integers separated by commas, got "${v}"`);
    return n;
  });
}

function concurrencyList(v: string): number[] {
  return v.split(',').map((p) => {
    const t = p.trim().toLowerCase();
    const n = t === 'inf' ? Infinity : Number(t);
    if (t === '' || !(n >= 1) || (n !== Infinity && !Number.isInteger(n))) throw new InvalidArgumentError(`expected positive integers or inf separated by commas, got "${v}"`);
    return n;
  });
}

/** A library parser as a commander argument parser: its RangeError becomes the flag's error message. */
function flag<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** The engine's flags, shared by every command that runs the engine. */
function addEngineOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <model>', 'a Hugging Face directory, a llama2.c .bin, a .gguf, or dummy:<preset>', DEFAULT_MODEL)
    .option('--tokenizer <file>', 'tokenizer to use instead of the model\'s (tokenizer.json or a llama2.c tok*.bin)')
    .addOption(new Option('--device <device>', 'cpu or cuda (default: cuda where present)').choices(['cpu', 'cuda']))
    .addOption(new Option('--dtype <dtype>', 'weights and activations').choices(['auto', 'float32', 'float16', 'bfloat16']).default('auto'))
    .option('--threads <n>', 'CPU threads', num('int'))
    .option('--max-num-seqs <n>', 'most sequences in one step (default 256)', num('int'))
    .option('--max-num-batched-tokens <n>', 'most tokens in one step (default 2048)', num('int'))
    .option('--max-model-len <n>', 'longest sequence, prompt and output (default: the model\'s context)', num('int'))
    .option('--block-size <n>', 'tokens per KV-cache block (default 16)', num('int'))
    .option('--kv-cache-bytes <n>', 'bytes of KV cache (CPU default: what max-num-seqs full sequences need, at most 4 GiB; on CUDA it replaces --gpu-memory-utilization)', num('int'))
    .option('--gpu-memory-utilization <f>', 'CUDA: share of device memory to use (default 0.9)', num('float'))
    .option('--no-enable-prefix-caching', 'do not reuse the KV of shared prompt prefixes')
    .option('--no-enable-chunked-prefill', 'prefill each prompt in one step')
    .option('--enforce-eager', 'CUDA: run every step eagerly, without the captured decode graphs')
    .option('--cuda-graph-sizes <list>', 'CUDA: decode batch sizes to capture, comma separated (default 1,2,4,8, then every 16 up to max-num-seqs)', intList);
}

interface EngineFlags {
  model: string; tokenizer?: string; device?: string; dtype: string; threads?: number;
  maxNumSeqs?: number; maxNumBatchedTokens?: number; maxModelLen?: number; blockSize?: number; kvCacheBytes?: number;
  gpuMemoryUtilization?: number; enablePrefixCaching: boolean; enableChunkedPrefill: boolean;
  enforceEager?: boolean; cudaGraphSizes?: number[];
}

/** Checks the engine flags, applies --threads, and returns the engine's options. */
function engineOptions(f: EngineFlags): EngineOptions {
  if (f.device !== undefined && !isDevice(f.device)) throw new InvalidArgumentError(`--device must be cpu or cuda, got "${f.device}"`);
  if (f.dtype !== 'auto' && !isFloatDType(f.dtype)) throw new InvalidArgumentError(`--dtype must be auto, float32, float16 or bfloat16, got "${f.dtype}"`);
  if (f.threads !== undefined) setNumThreads(f.threads);
  const keys = ['device', 'tokenizer', 'maxNumSeqs', 'maxNumBatchedTokens', 'maxModelLen', 'blockSize', 'kvCacheBytes', 'gpuMemoryUtilization'] as const;
  return {
    model: f.model, dtype: f.dtype, enablePrefixCaching: f.enablePrefixCaching, enableChunkedPrefill: f.enableChunkedPrefill,
    enforceEager: f.enforceEager === true,
    ...(f.cudaGraphSizes === undefined ? {} : { cudaGraphCaptureSizes: f.cudaGraphSizes }),
    ...Object.fromEntries(keys.filter((k) => f[k] !== undefined).map((k) => [k, f[k]])),
  };
}

/** A progress bar on stderr that shows itself only once loading has taken a second. */
function progressBar(): { onProgress: LoadProgress; stop: () => void } {
  const start = performance.now();
  let bar: SingleBar | null = null;
  let totalMb = 0;
  return {
    onProgress(done, total) {
      if (bar === null) {
        if (performance.now() - start < 1000 || !process.stderr.isTTY) return;
        bar = new SingleBar({ stream: process.stderr, format: 'loading weights [{bar}] {percentage}% | {value}/{total} MB | {eta}s left', hideCursor: true });
        totalMb = Math.ceil(total / 1e6);
        bar.start(totalMb, 0);
      }
      bar.update(done >= total ? totalMb : Math.floor(done / 1e6));
    },
    stop() {
      bar?.stop();
    },
  };
}

interface GenerateFlags extends EngineFlags {
  prompt: string[]; chat?: boolean; system?: string;
  temperature: number; topK?: number; topP?: number; minP?: number; repetitionPenalty?: number; presencePenalty?: number;
  frequencyPenalty?: number; seed?: number; maxTokens: number; stop: string[]; stopTokenId: string[]; ignoreEos?: boolean;
  logprobs?: number; json?: boolean; batchSize?: number;
}

interface BenchFlags extends EngineFlags {
  numPrompts: number; inputLen: number; outputLen: number; batchSize: number; numIters: number; requestRate: number;
  maxConcurrency?: number[]; seed: number; warmup: number; slo?: Slo; json?: string; html?: string; profile?: string; profileSteps: number;
  baseUrl?: string; apiKey?: string;
}

interface ServeFlags extends EngineFlags {
  host: string; port: number; apiKey?: string; servedModelName?: string; chatTemplate?: string; maxPendingRequests: number;
  shutdownTimeout: number; seed?: number; logRequests?: boolean;
}

async function runServe(f: ServeFlags): Promise<void> {
  const options = engineOptions(f);
  let chatTemplate: string | undefined;
  if (f.chatTemplate !== undefined) chatTemplate = existsSync(f.chatTemplate) ? readFileSync(f.chatTemplate, 'utf8') : f.chatTemplate;
  const apiKey = f.apiKey ?? process.env.MINI_VLLM_API_KEY;
  const bar = progressBar();
  const running = await serve({
    ...options, ...(f.seed !== undefined ? { seed: f.seed } : {}), host: f.host, port: f.port, maxPendingRequests: f.maxPendingRequests,
    shutdownTimeoutMs: f.shutdownTimeout * 1000, ...(apiKey ? { apiKey } : {}), ...(f.servedModelName ? { servedModelName: f.servedModelName } : {}),
    ...(chatTemplate !== undefined ? { chatTemplate } : {}), logRequests: !!f.logRequests, onProgress: bar.onProgress, log,
  }).finally(() => bar.stop());
  const { engine, server } = running;
  log(`mini-vllm: ${engine.options.model} on ${engine.options.device} in ${engine.dtype} (max model len ${engine.options.maxModelLen}, loaded in ${engine.loadSeconds.toFixed(2)} s)`);
  log(`mini-vllm: serving "${server.modelName}" at ${running.url}/v1${apiKey ? ' (API key required)' : ''}; Ctrl-C to stop`);
}

async function runBenchCommand(mode: BenchMode, f: BenchFlags): Promise<void> {
  const report = await runBench({
    mode, engine: engineOptions(f), numPrompts: f.numPrompts, inputLen: f.inputLen, outputLen: f.outputLen, batchSize: f.batchSize,
    numIters: f.numIters, requestRate: f.requestRate, maxConcurrency: f.maxConcurrency ?? (mode === 'all' ? [1, 4, 16, Infinity] : [Infinity]),
    seed: f.seed, warmup: f.warmup, ...(f.slo ? { slo: f.slo } : {}), ...(f.profile ? { profileSteps: f.profileSteps } : {}),
    ...(f.baseUrl ? { baseUrl: f.baseUrl } : {}), ...((f.apiKey ?? process.env.MINI_VLLM_API_KEY) ? { apiKey: f.apiKey ?? process.env.MINI_VLLM_API_KEY } : {}), log,
  });
  const { trace, ...rest } = report;
  process.stdout.write(`${summaryText(rest)}\n`);
  const write = (file: string, text: string, what: string) => {
    mkdirSync(dirname(resolve(file)), { recursive: true });
    writeFileSync(file, text);
    log(`mini-vllm: wrote ${what} to ${file}`);
  };
  if (f.json) write(f.json, `${JSON.stringify(rest, null, 1)}\n`, 'the results');
  const html = f.html ?? (f.json ? f.json.replace(/\.json$/i, '') + '.html' : undefined);
  if (html) write(html, htmlReport(rest), 'the charts');
  if (f.profile && trace) write(f.profile, JSON.stringify(trace), `the trace (${trace.metadata.steps} steps; open it at ui.perfetto.dev)`);
}

function samplingParams(f: GenerateFlags): SamplingParams {
  return {
    temperature: f.temperature, maxTokens: f.maxTokens, stop: f.stop,
    stopTokenIds: f.stopTokenId.map((s) => num('int')(s)),
    ...(f.topK !== undefined ? { topK: f.topK } : {}), ...(f.topP !== undefined ? { topP: f.topP } : {}),
    ...(f.minP !== undefined ? { minP: f.minP } : {}), ...(f.repetitionPenalty !== undefined ? { repetitionPenalty: f.repetitionPenalty } : {}),
    ...(f.presencePenalty !== undefined ? { presencePenalty: f.presencePenalty } : {}),
    ...(f.frequencyPenalty !== undefined ? { frequencyPenalty: f.frequencyPenalty } : {}),
    ...(f.seed !== undefined ? { seed: f.seed } : {}), ...(f.ignoreEos ? { ignoreEos: true } : {}),
    ...(f.logprobs !== undefined ? { logprobs: f.logprobs } : {}),
  };
}

/** Per request: time to first token, time per output token after it, end to end, as vLLM defines them. */
function timing(r: GenerationResult) {
  const ttft = r.timings.firstToken - r.timings.arrival;
  const e2e = r.timings.finish - r.timings.arrival;
  const n = r.tokenIds.length;
  return { ttftMs: ttft, tpotMs: n > 1 ? (e2e - ttft) / (n - 1) : null, e2eMs: e2e };
}

async function runGenerate(f: GenerateFlags): Promise<void> {
  if (f.batchSize !== undefined && f.batchSize < 1) throw new InvalidArgumentError(`--batch-size must be at least 1, got ${f.batchSize}`);
  const options = engineOptions(f);
  const params = samplingParams(f);
  const bar = progressBar();
  const engine = await InferenceEngine.create({ ...options, onProgress: bar.onProgress }).finally(() => bar.stop());
  try {
    const { config } = engine;
    const device = engine.options.device;
    log(`mini-vllm: ${f.model} (${(parameterCount(config) / 1e6).toFixed(1)}M parameters, ${config.numLayers} layers, vocab ${config.vocabSize}) on ${device} in ${engine.dtype}, loaded in ${engine.loadSeconds.toFixed(2)} s`);
    const base = f.prompt.length > 0 ? f.prompt : ['Once upon a time'];
    const prompts = Array.from({ length: (f.batchSize ?? 1) * base.length }, (_, i) => base[i % base.length]!);
    const texts = f.chat
      ? prompts.map((p) => engine.tokenizer.applyChatTemplate([...(f.system ? [{ role: 'system', content: f.system }] : []), { role: 'user', content: p }]))
      : prompts;
    const streaming = !f.json && texts.length === 1;
    const start = performance.now();
    let results: GenerationResult[];
    if (streaming) {
      const stream = engine.stream(texts[0]!, params);
      for await (const d of stream) process.stdout.write(d.text);
      results = [await stream.result];
    } else {
      results = await engine.generate(texts, params);
    }
    const seconds = (performance.now() - start) / 1000;
    const stats = await engine.getStats();
    const tokens = results.reduce((s, r) => s + r.tokenIds.length, 0);
    // Decode throughput: tokens after each request's first, over the span from the first first-token to the last finish.
    const firstAt = Math.min(...results.map((r) => r.timings.firstToken));
    const lastAt = Math.max(...results.map((r) => r.timings.finish));
    const decodeTokens = results.reduce((s, r) => s + r.tokenIds.length - 1, 0);
    const decodeTps = lastAt > firstAt ? decodeTokens / ((lastAt - firstAt) / 1000) : null;
    if (f.json) {
      process.stdout.write(`${JSON.stringify({
        model: f.model, device, dtype: engine.dtype, loadSeconds: engine.loadSeconds, batchSize: results.length,
        params, totalSeconds: seconds, outputTokens: tokens, outputTokensPerSecond: tokens / seconds, decodeTokensPerSecond: decodeTps,
        memory: stats.memory, prefixCache: stats.prefixCache, preemptions: stats.scheduler.preempted,
        results: results.map((r, i) => ({ prompt: texts[i], promptTokenIds: r.promptTokenIds, text: r.text, tokenIds: r.tokenIds,
          finishReason: r.finishReason, stopReason: r.stopReason, ...(r.logprobs ? { logprobs: r.logprobs } : {}), ...timing(r) })),
      })}\n`);
    } else if (!streaming) {
      for (const r of results) process.stdout.write(`${r.text}\n`);
    } else if (process.stdout.isTTY) {
      process.stdout.write('\n');
    }
    const t = timing(results[0]!);
    log(`mini-vllm: ${tokens} tokens in ${seconds.toFixed(2)} s (${(tokens / seconds).toFixed(1)} tok/s; TTFT ${t.ttftMs.toFixed(1)} ms${t.tpotMs === null ? '' : `, TPOT ${t.tpotMs.toFixed(2)} ms`}); finish: ${[...new Set(results.map((r) => r.finishReason))].join(', ')}`);
  } finally {
    await engine.stop();
  }
}

export function buildCli(): Command {
  const program = new Command('mini-vllm')
    .description('An LLM inference engine for Node.js in the mould of vLLM')
    .version(VERSION)
    .showHelpAfterError();

  const gen = program.command('generate')
    .description('generate a completion and stream it to stdout (logs go to stderr)')
    .option('-p, --prompt <text>', 'the prompt (repeat for a batch)', collect, [])
    .option('--chat', 'wrap the prompt as a user message in the model\'s chat template')
    .option('--system <text>', 'with --chat: a system message')
    .option('-t, --temperature <t>', '0 = greedy', num('float'), 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', num('int'))
    .option('--top-p <p>', 'nucleus sampling mass (1 = off)', num('float'))
    .option('--min-p <p>', 'drop tokens less likely than p times the best (0 = off)', num('float'))
    .option('--repetition-penalty <r>', '> 1 discourages tokens already seen', num('float'))
    .option('--presence-penalty <p>', 'subtracted once per token present in the output', num('float'))
    .option('--frequency-penalty <f>', 'subtracted per occurrence in the output', num('float'))
    .option('-s, --seed <n>', 'sampling seed (same seed, same output)', num('int'))
    .option('-n, --max-tokens <n>', 'most tokens to generate', num('int'), 256)
    .option('--stop <text>', 'a stop string (repeatable)', collect, [])
    .option('--stop-token-id <id>', 'a stop token id (repeatable)', collect, [])
    .option('--ignore-eos', 'keep going past end-of-sequence tokens')
    .option('--logprobs <n>', 'with --json: logprobs of each token and its n best alternatives', num('int'))
    .option('--json', 'print one JSON object (text, token ids, timings) instead of streaming text')
    .option('--batch-size <n>', 'send each prompt n times, all at once (a decode batch of n)', num('int'));
  addEngineOptions(gen).action(runGenerate);

  const bench = program.command('bench')
    .description('benchmark the engine as vLLM does: throughput, latency (TTFT, TPOT, ITL, E2E), serving load, memory')
    .addArgument(new Argument('<mode>', 'what to measure').choices(BENCH_MODES))
    .option('--num-prompts <n>', 'requests in the throughput, memory and serve runs', num('int'), 32)
    .option('--input-len <n>', 'prompt tokens per request (random ids)', num('int'), 128)
    .option('--output-len <n>', 'output tokens per request (EOS ignored, so exact)', num('int'), 64)
    .option('--batch-size <n>', 'latency: requests per iteration; also the profiled batch', num('int'), 1)
    .option('--num-iters <n>', 'latency: measured iterations', num('int'), 3)
    .option('--request-rate <r>', 'serve: requests per second, Poisson arrivals; inf = all at once', flag(parseRate), Infinity)
    .option('--max-concurrency <list>', 'serve: most requests in flight, one run per comma-separated value, inf = no limit (default: inf; 1,4,16,inf for all)', concurrencyList)
    .option('--seed <n>', 'seeds the prompts, the arrivals and the sampling', num('int'), 0)
    .option('--warmup <n>', 'requests run before measuring', num('int'), 2)
    .option('--slo <list>', 'goodput objectives in ms, e.g. ttft:200,tpot:50 (keys ttft, tpot, e2el)', flag(parseSlo))
    .option('--json <file>', 'write the whole result (config, machine, every metric, raw per-request times) as JSON')
    .option('--html <file>', 'write the charts (latency CDFs, throughput vs concurrency) and tables as one HTML page (default: beside --json)')
    .option('--profile <trace.json>', 'profile a few decode steps into a Chrome / Perfetto trace')
    .option('--profile-steps <n>', 'steps the profile records', num('int'), 5)
    .option('--base-url <url>', 'serve: send the requests to this running server (streamed /v1/completions) instead of an engine here; --model names the tokenizer')
    .option('--api-key <key>', 'with --base-url: the server\'s API key (default: $MINI_VLLM_API_KEY)');
  addEngineOptions(bench).action(runBenchCommand);

  const srv = program.command('serve')
    .description('serve the model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /health, /metrics)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', num('int'), 8000)
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" on /v1 routes (default: $MINI_VLLM_API_KEY)')
    .option('--served-model-name <name>', 'the model name clients send (default: --model)')
    .option('--chat-template <file-or-template>', 'a Jinja chat template (a file, or the template itself) instead of the model\'s')
    .option('--max-pending-requests <n>', 'requests (choices) in flight beyond which new ones get 503', num('int'), 1024)
    .option('--shutdown-timeout <seconds>', 'on SIGINT / SIGTERM, how long in-flight requests may finish before they are aborted', num('float'), 5)
    .option('--seed <n>', 'seeds unseeded requests\' draws and a dummy model\'s weights', num('int'))
    .option('--log-requests', 'log every HTTP request to stderr');
  addEngineOptions(srv).action(runServe);

  program.command('info')
    .description('print the backends this build and machine offer, and the dummy presets')
    .action(() => {
      process.stdout.write(`${JSON.stringify({ version: VERSION, node: process.version, backends: backends(), presets: Object.keys(PRESETS) }, null, 2)}\n`);
    });
  return program;
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1]);
if (isMain) {
  buildCli().parseAsync(process.argv).catch((e: unknown) => {
    const err = e as Error & { code?: string };
    log(`mini-vllm: ${err.name}${err.code ? ` [${err.code}]` : ''}: ${err.message}`);
    process.exitCode = 1;
  });
}
