// What a benchmark prints and writes: vLLM-style summary tables (stdout), and one self-contained HTML page with the
// latency CDFs and throughput against concurrency as inline SVG (no scripts, nothing fetched: it opens offline).
import type { Metrics, Summary } from './metrics.js';
import { requestLatencies } from './metrics.js';
import type { CudaGraphStats } from '../engine/index.js';
import type { BenchReport, RunResult } from './types.js';

const W = 50;
const rule = (title = '', ch = '=') => {
  if (!title) return ch.repeat(W);
  const pad = Math.max(0, W - title.length - 2);
  return `${ch.repeat(Math.floor(pad / 2))} ${title} ${ch.repeat(Math.ceil(pad / 2))}`;
};
const row = (label: string, value: string) => `${`${label}:`.padEnd(40)} ${value}`;
const fmt = (v: number | null, digits = 2) => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits));
const gib = (b: number) => `${(b / 2 ** 30).toFixed(3)} GiB`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function latencyRows(name: string, short: string, s: Summary): string[] {
  return [
    row(`Mean ${short} (ms)`, fmt(s.mean)),
    row(`Median ${short} (ms)`, fmt(s.median)),
    row(`Std ${short} (ms)`, fmt(s.std)),
    ...(['p90', 'p95', 'p99'] as const).map((p) => row(`${p.toUpperCase()} ${short} (ms)`, fmt(s[p]))),
  ].map((l, i) => (i === 0 ? `${rule(name, '-')}\n${l}` : l));
}

/** The rows vLLM's serving benchmark prints, for one run. */
export function metricsTable(title: string, m: Metrics, extra: string[] = []): string {
  return [
    rule(title),
    row('Successful requests', String(m.completed)),
    row('Benchmark duration (s)', fmt(m.durationSeconds)),
    row('Total input tokens', String(m.totalInputTokens)),
    row('Total generated tokens', String(m.totalOutputTokens)),
    row('Request throughput (req/s)', fmt(m.requestThroughput)),
    ...(m.requestGoodput === null ? [] : [row('Request goodput (req/s)', fmt(m.requestGoodput))]),
    row('Output token throughput (tok/s)', fmt(m.outputThroughput)),
    row('Peak output token throughput (tok/s)', fmt(m.peakOutputThroughput, 0)),
    row('Peak concurrent requests', String(m.peakConcurrency)),
    row('Total token throughput (tok/s)', fmt(m.totalTokenThroughput)),
    ...extra,
    ...latencyRows('Time to First Token', 'TTFT', m.ttftMs),
    ...latencyRows('Time per Output Token (excl. 1st token)', 'TPOT', m.tpotMs),
    ...latencyRows('Inter-token Latency', 'ITL', m.itlMs),
    ...latencyRows('End-to-end Latency', 'E2EL', m.e2elMs),
    rule(),
  ].join('\n');
}

function decodeLine(g: CudaGraphStats | null): string {
  if (g === null) return 'decode: eager (no graphs)';
  const sizes = g.sizes.length > 6 ? `${g.sizes.slice(0, 5).join(', ')}, ..., ${g.sizes.at(-1)}` : g.sizes.join(', ');
  const kind = g.kind === 'cpu' ? 'CPU' : 'CUDA'; // (reports written before CPU graphs have no kind: CUDA)
  return (
    `decode: ${kind} graphs for batch ${sizes} (${g.sizes.length} sizes, ${g.captures} captures in ` +
    `${(g.captureMs / 1000).toFixed(2)} s), ${g.replays} steps replayed`
  );
}

/** Every section of a report as text, in the order it ran. */
export function summaryText(r: BenchReport): string {
  const where = r.backend.device === 'http' ? r.target : `${r.backend.device} (${r.backend.dtype})`;
  const gpus = r.machine.gpus.length ? `, ${r.machine.gpus.join(', ')}` : '';
  const bandwidth = r.bandwidth ? `; ${r.bandwidth.kind}: ${r.bandwidth.gbPerSecond.toFixed(1)} GB/s` : '';
  const parts: string[] = [
    [
      `mini-vllm bench ${r.mode}: ${r.backend.model} on ${where}, commit ${r.commit ?? 'unknown'}`,
      `machine: ${r.machine.cpu}, ${r.machine.cores} cores${gpus}${bandwidth}`,
      ...(r.target === 'engine' ? [] : [`target: ${r.target} over HTTP (streamed /v1/completions, a token per chunk)`]),
      `workload: ${r.config.inputLen} tokens in, ${r.config.outputLen} out (random ids, EOS ignored), seed ` +
        `${r.config.seed}`,
      ...(r.cudaGraphs === undefined ? [] : [decodeLine(r.cudaGraphs)]),
    ].join('\n'),
  ];
  if (r.throughput)
    parts.push(
      metricsTable('Throughput Benchmark Result', r.throughput.metrics, [
        row('Prompts (all at once)', String(r.config.numPrompts)),
      ]),
    );
  if (r.latency) {
    const l = r.latency;
    parts.push(
      metricsTable('Latency Benchmark Result', l.metrics, [
        row('Batch size', String(l.batchSize)),
        row('Iterations', String(l.iterations)),
        row('Avg batch latency (ms)', fmt(l.iterationLatencyMs.mean)),
        row('P50 batch latency (ms)', fmt(l.iterationLatencyMs.p50)),
        row('P99 batch latency (ms)', fmt(l.iterationLatencyMs.p99)),
        row('TPOT floor: weights / bandwidth (ms)', fmt(l.bandwidthFloor.tpotFloorMs, 3)),
        row(
          'Floor / median TPOT',
          l.bandwidthFloor.fractionOfFloorAtMedianTpot === null
            ? 'n/a'
            : `${(l.bandwidthFloor.fractionOfFloorAtMedianTpot * 100).toFixed(1)}%`,
        ),
      ]),
    );
  }
  for (const s of r.serve ?? []) {
    parts.push(
      metricsTable('Serving Benchmark Result', s.metrics, [
        row('Request rate (req/s)', String(s.requestRate)),
        row('Max concurrency', String(s.maxConcurrency)),
      ]),
    );
  }
  if (r.memory) {
    const m = r.memory;
    parts.push(
      [
        rule('Memory'),
        row('Weights', gib(m.weightsBytes)),
        row('KV cache pool', `${gib(m.kvCacheBytes)} (${m.numBlocks} blocks of ${m.blockSize})`),
        row('KV bytes per token', String(m.kvBytesPerToken)),
        row('Full-length sequences the pool holds', String(m.maxFullLengthSequences)),
        row('Blocks used at peak', `${m.peakUsedBlocks} of ${m.numBlocks}`),
        row(`Peak live tensors on ${m.device}`, mib(m.peakDeviceBytes)),
        row('Peak process RSS', mib(m.peakProcessRssBytes)),
        ...(m.deviceUsedBytes === null ? [] : [row('Device memory in use (driver)', gib(m.deviceUsedBytes))]),
        rule(),
      ].join('\n'),
    );
  }
  if (r.profile) {
    const p = r.profile.summary;
    parts.push(
      [
        rule(`Profile: ${p.numSteps} ${p.steps === 'decode' ? 'decode ' : ''}steps, ${p.clock} time`),
        row('Mean step (ms)', fmt(p.stepMs, 3)),
        ...p.ops
          .slice(0, 10)
          .map((o) =>
            row(
              `${o.name} ×${Number(o.callsPerStep.toFixed(1))} (ms/step)`,
              `${fmt(o.msPerStep, 3)}  ${(o.share * 100).toFixed(1)}%`,
            ),
          ),
        row('Trace events', String(r.profile.events)),
        rule(),
      ].join('\n'),
    );
  }
  return parts.join('\n\n');
}

// ---- charts ----

interface Series {
  name: string;
  points: Array<[number, number]>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A line chart as SVG; `logX` puts x on a log2 axis (for concurrency sweeps). */
export function lineChart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: Series[],
  opts: { logX?: boolean; step?: boolean } = {},
): string {
  const w = 560,
    h = 340,
    ml = 64,
    mr = 16,
    mt = 30,
    mb = 48;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0)
    return (
      `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="60"><text x="8" y="30">${esc(title)}: no ` +
      `data</text></svg>`
    );
  const fx = opts.logX ? Math.log2 : (x: number) => x;
  let x0 = Math.min(...all.map((p) => fx(p[0]))),
    x1 = Math.max(...all.map((p) => fx(p[0])));
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  const y0 = 0,
    y1 = Math.max(...all.map((p) => p[1])) * 1.05 || 1;
  const sx = (x: number) => ml + ((fx(x) - x0) / (x1 - x0)) * (w - ml - mr);
  const sy = (y: number) => h - mb - ((y - y0) / (y1 - y0)) * (h - mt - mb);
  const xt = opts.logX
    ? Array.from({ length: Math.floor(x1) - Math.ceil(x0) + 1 }, (_, i) => 2 ** (Math.ceil(x0) + i))
    : ticks(x0, x1);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="11">`,
    `<text x="${w / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${ml}" y="${mt}" width="${w - ml - mr}" height="${h - mt - mb}" fill="none" stroke="#999"/>`,
    ...xt.map(
      (v) =>
        `<line x1="${sx(v)}" x2="${sx(v)}" y1="${mt}" y2="${h - mb}" stroke="#eee"/><text x="${sx(v)}" ` +
        `y="${h - mb + 14}" text-anchor="middle">${v}</text>`,
    ),
    ...ticks(y0, y1).map(
      (v) =>
        `<line x1="${ml}" x2="${w - mr}" y1="${sy(v)}" y2="${sy(v)}" stroke="#eee"/><text x="${ml - 4}" ` +
        `y="${sy(v) + 4}" text-anchor="end">${v}</text>`,
    ),
    `<text x="${(ml + w - mr) / 2}" y="${h - 10}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(14 ${(mt + h - mb) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  ];
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts: string[] = [];
    s.points.forEach(([x, y], k) => {
      if (opts.step && k > 0) pts.push(`${sx(x).toFixed(1)},${sy(s.points[k - 1]![1]).toFixed(1)}`);
      pts.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    });
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.8" points="${pts.join(' ')}"/>`);
    if (!opts.step)
      for (const [x, y] of s.points)
        parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
    parts.push(`<text x="${ml + 8}" y="${mt + 14 + i * 14}" fill="${color}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Empirical CDF points of the samples (x ascending, y from 1/n to 1), at most `maxPoints` of them (evenly spaced
 * ranks, the last kept). */
export function cdf(samples: readonly number[], maxPoints = 500): Array<[number, number]> {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const stride = Math.max(1, Math.ceil(n / maxPoints));
  const out: Array<[number, number]> = [];
  for (let i = stride - 1; i < n; i += stride) out.push([s[i]!, (i + 1) / n]);
  if (n > 0 && out.at(-1)![1] !== 1) out.push([s[n - 1]!, 1]);
  return out;
}

function runs(r: BenchReport): Array<{ name: string; run: RunResult }> {
  const out: Array<{ name: string; run: RunResult }> = [];
  if (r.throughput) out.push({ name: `throughput (${r.config.numPrompts} at once)`, run: r.throughput });
  if (r.latency) out.push({ name: `latency (batch ${r.latency.batchSize})`, run: r.latency });
  for (const s of r.serve ?? [])
    out.push({ name: `serve (rate ${s.requestRate}, concurrency ${s.maxConcurrency})`, run: s });
  return out;
}

export function htmlReport(r: BenchReport): string {
  const named = runs(r);
  const per = named.map(({ name, run }) => ({ name, l: run.requests.map(requestLatencies) }));
  const cdfChart = (title: string, pick: (l: ReturnType<typeof requestLatencies>[]) => number[]) =>
    lineChart(
      `${title} CDF`,
      `${title} (ms)`,
      'fraction of samples',
      per.map(({ name, l }) => ({ name, points: cdf(pick(l)) })),
      { step: true },
    );
  const charts = [
    cdfChart('TTFT', (l) => l.map((x) => x.ttft)),
    cdfChart('TPOT', (l) => l.flatMap((x) => (x.tpot === null ? [] : [x.tpot]))),
    cdfChart('ITL', (l) => l.flatMap((x) => x.itl)),
    cdfChart('E2E latency', (l) => l.map((x) => x.e2el)),
  ];
  const sweep = (r.serve ?? []).filter((s) => s.maxConcurrency !== 'inf');
  if (sweep.length > 0) {
    const pts = (f: (m: Metrics) => number | null) =>
      sweep.map((s) => [s.maxConcurrency as number, f(s.metrics) ?? NaN] as [number, number]);
    charts.push(
      lineChart(
        'Output throughput vs concurrency',
        'max concurrency',
        'output tokens/s',
        [{ name: 'output tok/s', points: pts((m) => m.outputThroughput) }],
        { logX: true },
      ),
      lineChart(
        'Latency vs concurrency',
        'max concurrency',
        'ms',
        [
          { name: 'TPOT p50', points: pts((m) => m.tpotMs.p50) },
          { name: 'TPOT p99', points: pts((m) => m.tpotMs.p99) },
          { name: 'TTFT p50', points: pts((m) => m.ttftMs.p50) },
        ],
        { logX: true },
      ),
    );
  }
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>mini-vllm bench ${esc(r.mode)}: ${esc(r.backend.model)}</title>
<style>
body{font-family:sans-serif;margin:24px;max-width:1200px}
pre{background:#f6f6f6;padding:12px;overflow:auto}
.charts{display:flex;flex-wrap:wrap;gap:12px}
</style>
</head><body>
<h1>mini-vllm bench ${esc(r.mode)}</h1>
<p>${esc(r.backend.model)} on ${esc(r.backend.device)} (${esc(r.backend.dtype)}),
mini-vllm ${esc(r.version)} commit ${esc(r.commit ?? 'unknown')}, ${esc(r.date)}</p>
<div class="charts">${charts.join('\n')}</div>
<h2>Summary</h2>
<pre>${esc(summaryText(r))}</pre>
</body></html>
`;
}
