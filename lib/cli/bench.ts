// `mini-vllm bench`: the engine benchmarked as vLLM benchmarks it (lib/bench), a summary to stdout, JSON, HTML and a
// trace where asked.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Argument, type Command } from 'commander';
import { parseSlo } from '../bench/metrics.js';
import { htmlReport, summaryText } from '../bench/report.js';
import { runBench } from '../bench/runner.js';
import { BENCH_MODES, type BenchMode, type BenchOptions } from '../bench/types.js';
import { parseRate } from '../bench/workload.js';
import { addEngineOptions, concurrencyList, type EngineFlags, engineOptions, flag, log, num } from './flags.js';

/** The flags that are BenchOptions fields of the same name. */
type BenchOptionFlags = Pick<
  BenchOptions,
  'numPrompts' | 'inputLen' | 'outputLen' | 'batchSize' | 'numIters' | 'requestRate' | 'seed' | 'warmup' | 'slo'
>;

interface BenchFlags extends EngineFlags, BenchOptionFlags {
  maxConcurrency?: number[];
  json?: string;
  html?: string;
  profile?: string;
  profileSteps: number;
  baseUrl?: string;
  apiKey?: string;
}

function pick<T, K extends keyof T>(o: T, keys: readonly K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Pick<T, K>;
}

async function runBenchCommand(mode: BenchMode, f: BenchFlags): Promise<void> {
  const report = await runBench({
    mode,
    engine: engineOptions(f),
    ...pick(f, ['numPrompts', 'inputLen', 'outputLen', 'batchSize', 'numIters', 'requestRate', 'seed', 'warmup']),
    maxConcurrency: f.maxConcurrency ?? (mode === 'all' ? [1, 4, 16, Infinity] : [Infinity]),
    ...(f.slo ? { slo: f.slo } : {}),
    ...(f.profile ? { profileSteps: f.profileSteps } : {}),
    ...(f.baseUrl ? { baseUrl: f.baseUrl } : {}),
    ...((f.apiKey ?? process.env.MINI_VLLM_API_KEY) ? { apiKey: f.apiKey ?? process.env.MINI_VLLM_API_KEY } : {}),
    log,
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
  if (f.profile && trace)
    write(f.profile, JSON.stringify(trace), `the trace (${trace.metadata.steps} steps; open it at ui.perfetto.dev)`);
}

export function addBenchCommand(program: Command): void {
  const bench = program
    .command('bench')
    .description('benchmark the engine as vLLM does: throughput, latency (TTFT, TPOT, ITL, E2E), serving load, memory')
    .addArgument(new Argument('<mode>', 'what to measure').choices(BENCH_MODES))
    .option('--num-prompts <n>', 'requests in the throughput, memory and serve runs', num('int'), 32)
    .option('--input-len <n>', 'prompt tokens per request (random ids)', num('int'), 128)
    .option('--output-len <n>', 'output tokens per request (EOS ignored, so exact)', num('int'), 64)
    .option('--batch-size <n>', 'latency: requests per iteration; also the profiled batch', num('int'), 1)
    .option('--num-iters <n>', 'latency: measured iterations', num('int'), 3)
    .option(
      '--request-rate <r>',
      'serve: requests per second, Poisson arrivals; inf = all at once',
      flag(parseRate),
      Infinity,
    )
    .option(
      '--max-concurrency <list>',
      'serve: most requests in flight, one run per comma-separated value, inf = no limit (default: inf; 1,4,16,inf ' +
        'for all)',
      concurrencyList,
    )
    .option('--seed <n>', 'seeds the prompts, the arrivals and the sampling', num('int'), 0)
    .option('--warmup <n>', 'requests run before measuring', num('int'), 2)
    .option('--slo <list>', 'goodput objectives in ms, e.g. ttft:200,tpot:50 (keys ttft, tpot, e2el)', flag(parseSlo))
    .option('--json <file>', 'write the whole result (config, machine, every metric, raw per-request times) as JSON')
    .option(
      '--html <file>',
      'write the charts (latency CDFs, throughput vs concurrency) and tables as one HTML page (default: beside --json)',
    )
    .option('--profile <trace.json>', 'profile a few decode steps into a Chrome / Perfetto trace')
    .option('--profile-steps <n>', 'steps the profile records', num('int'), 5)
    .option(
      '--base-url <url>',
      'serve: send the requests to this running server (streamed /v1/completions) instead of an engine here; --model ' +
        'names the tokenizer',
    )
    .option('--api-key <key>', "with --base-url: the server's API key (default: $MINI_VLLM_API_KEY)");
  addEngineOptions(bench).action(runBenchCommand);
}
