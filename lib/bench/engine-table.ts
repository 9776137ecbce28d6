// The short table of a set of `mini-vllm bench --json` reports (bench/gpu-engine.sh prints it last): per model, mode
// and decode path, the vLLM headline numbers, the TPOT bandwidth floor and the fraction of it reached, memory.
//   node dist/lib/bench/engine-table.js REPORT.json... [--md OUT.md]
import { readFileSync, writeFileSync } from 'node:fs';
import type { BenchReport } from './index.js';
import { benchArgs } from './args.js';

const USAGE = `usage: node dist/lib/bench/engine-table.js REPORT.json... [--md OUT.md]
  the short table of a set of \`mini-vllm bench --json\` reports`;

const { values, positionals } = benchArgs(USAGE, { options: { md: { type: 'string' } }, allowPositionals: true });
const fmt = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);

const header = [
  'model',
  'mode',
  'decode',
  'TTFT p50 ms',
  'TPOT p50 ms',
  'TPOT floor ms',
  'floor / TPOT',
  'output tok/s',
  'peak device GB',
  'graph capture s',
];
const rows: string[][] = [];
for (const file of positionals) {
  let r: BenchReport;
  try {
    r = JSON.parse(readFileSync(file, 'utf8')) as BenchReport;
  } catch (e) {
    rows.push([file, `unreadable: ${(e as Error).message}`, ...header.slice(2).map(() => '-')]);
    continue;
  }
  const run = r.latency ?? r.throughput;
  const floor = r.latency?.bandwidthFloor;
  const g = r.cudaGraphs;
  rows.push([
    `${r.backend.model} (${r.backend.dtype})`,
    r.latency ? `latency, batch ${r.latency.batchSize}` : `${r.mode}, ${r.config.numPrompts} prompts`,
    g ? `graphs (${g.replays} replays)` : 'eager',
    fmt(run?.metrics.ttftMs.median),
    fmt(run?.metrics.tpotMs.median, 2),
    fmt(floor?.tpotFloorMs, 2),
    floor?.fractionOfFloorAtMedianTpot ? `${(100 * floor.fractionOfFloorAtMedianTpot).toFixed(1)}%` : '-',
    fmt(run?.metrics.outputThroughput, 0),
    r.memory ? fmt(r.memory.peakDeviceBytes / 1e9, 2) : '-',
    g ? fmt(g.captureMs / 1000, 2) : '-',
  ]);
}
const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
const md = [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
console.log(md);
if (values.md) writeFileSync(values.md, `${md}\n`);
