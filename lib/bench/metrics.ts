// Serving metrics exactly as vLLM's benchmark defines them (benchmarks/serve.py, calculate_metrics):
//   TTFT  first token − arrival, per request;
//   TPOT  (E2E − TTFT) / (output tokens − 1), per request with more than one output token;
//   ITL   every gap between consecutive tokens of a request, pooled over all requests;
//   E2E   finish − arrival, per request.
// Each is summarised by mean, median, standard deviation (population, numpy's default) and percentiles with linear
// interpolation (numpy's default). Throughputs are totals over the benchmark's duration.

import type { GenerationResult, RequestTimings } from '../engine/index.js';

/**
 * One finished request as the benchmark saw it: its token counts and its timings (the engine's RequestTimings:
 * arrival, first token, every token, finish), in milliseconds on one clock; `tokens` has one time per output token.
 */
export interface RequestRecord extends RequestTimings {
  promptTokens: number;
  outputTokens: number;
}

/** A generation result as a record, on the caller's performance.now() clock. */
export function requestRecord(r: GenerationResult): RequestRecord & { requestId: string } {
  const { arrival, firstToken, tokens, finish } = r.timings;
  return {
    requestId: r.requestId,
    promptTokens: r.promptTokenIds.length,
    outputTokens: r.tokenIds.length,
    arrival,
    firstToken,
    tokens,
    finish,
  };
}

export interface Summary {
  count: number;
  mean: number | null;
  median: number | null;
  std: number | null;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  min: number | null;
  max: number | null;
}

/** Service-level objectives in milliseconds; a request is good when it meets every one given. */
export interface Slo {
  ttft?: number;
  tpot?: number;
  e2el?: number;
}

export interface Metrics {
  completed: number;
  durationSeconds: number;
  totalInputTokens: number;
  totalOutputTokens: number;
  requestThroughput: number;
  outputThroughput: number;
  totalTokenThroughput: number;
  /** Requests per second that met every SLO (null when no SLO was given). */
  requestGoodput: number | null;
  /** The most output tokens in any one-second window of the run, aligned to its start (vLLM's peak). */
  peakOutputThroughput: number;
  /** The most requests in flight at once. */
  peakConcurrency: number;
  ttftMs: Summary;
  tpotMs: Summary;
  itlMs: Summary;
  e2elMs: Summary;
}

/** numpy.percentile with the default linear interpolation; `sorted` ascending, p in [0, 100]. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile: no samples');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in [0, 100], got ${p}`);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const n = samples.length;
  if (n === 0)
    return {
      count: 0,
      mean: null,
      median: null,
      std: null,
      p50: null,
      p90: null,
      p95: null,
      p99: null,
      min: null,
      max: null,
    };
  const sorted = [...samples].sort((a, b) => a - b);
  let sum = 0;
  for (const x of sorted) sum += x;
  const mean = sum / n;
  let ss = 0;
  for (const x of sorted) ss += (x - mean) ** 2;
  return {
    count: n,
    mean,
    median: percentile(sorted, 50),
    std: Math.sqrt(ss / n),
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    min: sorted[0]!,
    max: sorted[n - 1]!,
  };
}

/** The per-request quantities: TTFT, TPOT (null with one output token), the gaps between tokens, E2E. */
export function requestLatencies(r: RequestRecord): { ttft: number; tpot: number | null; itl: number[]; e2el: number } {
  if (r.tokens.length !== r.outputTokens)
    throw new RangeError(`requestLatencies: ${r.tokens.length} token times for ${r.outputTokens} output tokens`);
  const ttft = r.firstToken - r.arrival;
  const e2el = r.finish - r.arrival;
  const itl: number[] = [];
  for (let i = 1; i < r.tokens.length; ++i) itl.push(r.tokens[i]! - r.tokens[i - 1]!);
  return { ttft, tpot: r.outputTokens > 1 ? (e2el - ttft) / (r.outputTokens - 1) : null, itl, e2el };
}

/**
 * Decode throughput of requests run together: the tokens after each one's first, over the span from the first first
 * token to the last finish (so prefill is left out). Null when that span is empty (every request made one token).
 */
export function decodeThroughput(records: readonly RequestRecord[]): number | null {
  const from = Math.min(...records.map((r) => r.firstToken));
  const to = Math.max(...records.map((r) => r.finish));
  const tokens = records.reduce((n, r) => n + r.outputTokens - 1, 0);
  return to > from ? tokens / ((to - from) / 1000) : null;
}

/**
 * Every metric of a run. `start` and `end` bound the benchmark (its duration is end − start, as vLLM times the whole
 * gather); by default they are the first arrival and the last finish.
 */
export function computeMetrics(
  records: readonly RequestRecord[],
  opts: { start?: number; end?: number; slo?: Slo } = {},
): Metrics {
  const start = opts.start ?? Math.min(...records.map((r) => r.arrival));
  const end = opts.end ?? Math.max(...records.map((r) => r.finish));
  const duration = records.length === 0 ? 0 : (end - start) / 1000;
  const ttfts: number[] = [],
    tpots: number[] = [],
    itls: number[] = [],
    e2els: number[] = [];
  let input = 0,
    output = 0,
    good = 0;
  for (const r of records) {
    const l = requestLatencies(r);
    input += r.promptTokens;
    output += r.outputTokens;
    ttfts.push(l.ttft);
    if (l.tpot !== null) tpots.push(l.tpot);
    for (const g of l.itl) itls.push(g);
    e2els.push(l.e2el);
    // vLLM counts a one-token request's TPOT as 0 for goodput.
    const slo = opts.slo;
    if (
      slo &&
      (slo.ttft === undefined || l.ttft <= slo.ttft) &&
      (slo.tpot === undefined || (l.tpot ?? 0) <= slo.tpot) &&
      (slo.e2el === undefined || l.e2el <= slo.e2el)
    )
      ++good;
  }
  const per = (x: number) => (duration > 0 ? x / duration : 0);
  const hasSlo = opts.slo !== undefined && Object.values(opts.slo).some((v) => v !== undefined);
  return {
    completed: records.length,
    durationSeconds: duration,
    totalInputTokens: input,
    totalOutputTokens: output,
    requestThroughput: per(records.length),
    outputThroughput: per(output),
    totalTokenThroughput: per(input + output),
    requestGoodput: hasSlo ? per(good) : null,
    peakOutputThroughput: peakPerSecond(
      records.flatMap((r) => r.tokens),
      start,
    ),
    peakConcurrency: peakConcurrency(records),
    ttftMs: summarize(ttfts),
    tpotMs: summarize(tpots),
    itlMs: summarize(itls),
    e2elMs: summarize(e2els),
  };
}

/** The most events in one of the one-second buckets [start + k s, start + (k+1) s). */
export function peakPerSecond(times: readonly number[], start: number): number {
  const buckets = new Map<number, number>();
  let best = 0;
  for (const t of times) {
    const k = Math.floor((t - start) / 1000);
    const n = (buckets.get(k) ?? 0) + 1;
    buckets.set(k, n);
    if (n > best) best = n;
  }
  return best;
}

/** The most requests in flight at one time (a request is in flight over [arrival, finish)). */
export function peakConcurrency(records: readonly RequestRecord[]): number {
  const edges: Array<[number, number]> = [];
  for (const r of records) edges.push([r.arrival, 1], [r.finish, -1]);
  // Ends before starts at the same instant: back-to-back requests do not overlap.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0,
    best = 0;
  for (const [, d] of edges) best = Math.max(best, (now += d));
  return best;
}

/** Parses "ttft:200,tpot:50" (milliseconds; keys ttft, tpot, e2el). */
export function parseSlo(text: string): Slo {
  const slo: Slo = {};
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(ttft|tpot|e2el):(.+)$/.exec(part);
    const v = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(v) || v <= 0)
      throw new RangeError(
        `--slo: expected key:milliseconds with key ttft, tpot or e2el and a positive number, got "${part}"`,
      );
    slo[m[1] as keyof Slo] = v;
  }
  if (Object.keys(slo).length === 0) throw new RangeError(`--slo: expected e.g. "ttft:200,tpot:50", got "${text}"`);
  return slo;
}
