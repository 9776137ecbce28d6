// Op microbenchmarks (benny): median time and effective bandwidth (or FLOP/s) of every op, beside the machine's
// own limits measured in the same run: a STREAM-like read and the fp32 FMA peak on the CPU, a device-to-device
// copy on CUDA. Each family's cases live in lib/bench/ops/<family>.bench.ts; this file times them and writes the table.
// With several CPU levels (--isa) a row's levels are timed in turns instead (levels-ab.ts), for their ratios.
//
//   npm run bench [-- --quick] [--device cpu|cuda|all] [--filter <regex>] [--json <file>]
import b from 'benny';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { memoryBandwidth } from './bandwidth.js';
import { type CudaPeaks, cudaPeaks, gitCommit, machineInfo, machineLine } from './machine.js';
import type { Device } from '../dtype.js';
import { backends } from '../native.js';
import { setCpuIsa, synchronize } from '../runtime.js';
import { native } from '../native.js';
import type { CaseList, Limit, OpCase } from './ops/case.js';
import { benchArgs } from './args.js';
import { timeLevelsInterleaved } from './levels-ab.js';

const USAGE = `usage: npm run bench -- [--quick] [--device cpu|cuda|all] [--filter <regex>] [--json <file>]
                       [--isa all|<level>,...]
  op microbenchmarks: median time and GB/s or FLOP/s of every op beside the machine's measured limits`;

const { values: args } = benchArgs(USAGE, {
  options: {
    quick: { type: 'boolean', default: false },
    device: { type: 'string', default: 'all' },
    filter: { type: 'string' },
    json: { type: 'string' },
    // CPU levels to run the CPU rows under (csrc/cpu/level.h): "all" (every level this machine runs) or a list
    isa: { type: 'string' },
  },
});

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const log = (...a: unknown[]): void => console.error(...a); // progress to stderr; the table is the output

interface Row {
  device: Device;
  /** the CPU level the row ran under (null on CUDA) */
  isa: string | null;
  op: string;
  dtype: string;
  shape: string;
  bytes: number;
  /** tensor sets rotated through (1 = the same tensors every call, cache-warm) */
  copies: number;
  medianSeconds: number;
  samples: number;
  gbPerSecond: number;
  /** FLOP/s / 1e9, for cases that count their flops */
  gflopsPerSecond: number | null;
  /** what the row is compared with: the read bandwidth ('bytes') or the FMA peak ('flops') */
  limitKind: Limit;
  /** GB/s over the bandwidth limit, or GFLOP/s over the FMA peak (null: no peak measured on this device) */
  fractionOfLimit: number | null;
  /** CUDA: GB/s over the spec bandwidth, or (f16/bf16) GFLOP/s over the tensor-core peak, from the device properties */
  fractionOfSpec: number | null;
}

/** Median seconds per call of `run` via benny. On CUDA each call includes a synchronize. */
async function timeWithBenny(
  name: string,
  run: () => void,
  quick: boolean,
): Promise<{ median: number; samples: number }> {
  // benny announces each suite with console.log; stdout is reserved for the table.
  const consoleLog = console.log;
  console.log = log;
  try {
    const summary = await b.suite(
      name,
      b.add(name, run, { minSamples: quick ? 5 : 10, maxTime: quick ? 0.5 : 1.5 }),
      b.configure({ cases: { minSamples: quick ? 5 : 10 } }),
    );
    const r = summary.results[0]!;
    return { median: r.details.median, samples: r.samples };
  } finally {
    console.log = consoleLog;
  }
}

/** Last-level cache bytes (CPU: from sysfs; CUDA: 64 MiB, above any current L2). */
function lastLevelCacheBytes(device: Device): number {
  if (device === 'cuda') return 64 * 2 ** 20;
  for (const index of [3, 2]) {
    try {
      const text = readFileSync(`/sys/devices/system/cpu/cpu0/cache/index${index}/size`, 'utf8').trim();
      const m = /^(\d+)([KMG]?)/.exec(text);
      if (m) return Number(m[1]) * ({ '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 } as Record<string, number>)[m[2]!]!;
    } catch {
      // not Linux, or no such level
    }
  }
  return 32 * 2 ** 20;
}

/**
 * Large cases rotate over enough copies of their tensors (together over twice the last-level cache) that every
 * call streams from memory, as a real model's activations do; small ones stay in cache, as a decode step's do.
 */
function copiesFor(bytes: number, device: Device): number {
  if (bytes < 8 * 2 ** 20) return 1;
  return Math.max(1, Math.ceil((2 * lastLevelCacheBytes(device)) / bytes));
}

/** Median seconds per call from CUDA events around `reps` back-to-back calls, 7 times. */
function timeWithEvents(run: () => void, reps: number): number {
  const perCall: number[] = [];
  for (let i = 0; i < 7; ++i) {
    native.timerStart(0);
    for (let j = 0; j < reps; ++j) run();
    perCall.push(native.timerStop(0) / 1e3 / reps);
  }
  perCall.sort((a, c) => a - c);
  return perCall[3]!;
}

interface DeviceResult {
  device: Device;
  /** the CPU level of the CPU rows (null on CUDA) */
  isa: string | null;
  /** the higher of the two measurements is the limit each row is compared with */
  limit: { kind: string; gbPerSecond: number; before: number; after: number };
  /** fp32 FMA peak in GFLOP/s, measured before and after the ops (CPU only; null on CUDA) */
  peak: { kind: string; gflopsPerSecond: number; before: number; after: number } | null;
  /** CUDA: the bandwidth and tensor-core peaks from the device properties */
  spec: CudaPeaks | null;
  rows: Row[];
}

const PEAK_KIND = 'fp32 FMA peak (independent vector FMA chains on every thread, 1 s)';

/** Every family's cases, from lib/bench/ops/<family>.bench.js, in file order. */
async function allCases(quick: boolean, device: Device): Promise<OpCase[]> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'ops');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.bench.js'))
    .sort();
  const lists = await Promise.all(
    files.map(async (f) => ((await import(join(dir, f))) as { cases: CaseList }).cases(quick, device)),
  );
  return lists.flat();
}

// Rounds of the levels' turns per row (levels-ab.ts): 40 rounds of 20 ms bursts, about 0.8 s per level, as benny's
// 1.5 s for one.
const LEVEL_ROUNDS = 40;

/**
 * Every case on `device`; on the CPU under each of `isas`, row by row: a row is timed under every level before the next
 * row starts, on the same tensors. Several levels take turns in short bursts (levels-ab.ts), so that the levels'
 * figures for a row come from the same seconds of a machine whose speed drifts. One result per level.
 */
async function benchDevice(device: Device, quick: boolean, isas: readonly (string | null)[]): Promise<DeviceResult[]> {
  const onLevel = (isa: string | null) => {
    if (isa !== null) setCpuIsa(isa);
  };
  // Measured before and after the ops; the higher is the limit, so a noisy moment cannot flatter the ops.
  const limits = (when: string) =>
    isas.map((isa) => {
      onLevel(isa);
      const bw = memoryBandwidth(device);
      const at = isa === null ? device : `cpu [${isa}]`;
      log(`${at}: ${bw.kind}${when}: ${bw.gbPerSecond.toFixed(1)} GB/s`);
      const peak = device === 'cpu' ? native.fmaPeak(1) : NaN;
      if (device === 'cpu') log(`${at}: ${PEAK_KIND}${when}: ${peak.toFixed(1)} GFLOP/s`);
      return { bw, peak };
    });
  const before = limits('');
  const rows: Row[][] = isas.map(() => []);
  const filter = args.filter ? new RegExp(args.filter) : null;
  let caseIndex = 0;
  for (const c of await allCases(quick, device)) {
    const label = `${c.op} ${c.dtype} ${c.shape}`;
    if (filter && !filter.test(label)) continue;
    const sets = Array.from({ length: copiesFor(c.bytes, device) }, () => c.setup(device));
    let next = 0;
    const run = (): void => sets[next++ % sets.length]!.run();
    const order = isas.map((_, i) => i);
    if (caseIndex++ % 2 === 1) order.reverse();
    // several CPU levels: timed together, in turns (levels-ab.ts); one level or CUDA: benny
    const together =
      device === 'cpu' && isas.length > 1
        ? timeLevelsInterleaved(run, isas as string[], quick ? 10 : LEVEL_ROUNDS)
        : null;
    for (const li of order) {
      const isa = isas[li]!;
      onLevel(isa);
      let median: number;
      let samples: number;
      if (together) {
        ({ median, samples } = together[li]!);
      } else if (device === 'cpu') {
        ({ median, samples } = await timeWithBenny(isa === null ? label : `${label} [${isa}]`, run, quick));
      } else {
        const wall = await timeWithBenny(
          label,
          () => {
            run();
            synchronize('cuda');
          },
          quick,
        );
        samples = wall.samples;
        median = timeWithEvents(run, 20); // kernel time without the per-call synchronize
      }
      const gbps = c.bytes / median / 1e9;
      const gflops = c.flops === undefined ? null : c.flops / median / 1e9;
      rows[li]!.push({
        device,
        isa,
        op: c.op,
        dtype: c.dtype,
        shape: c.shape,
        bytes: c.bytes,
        copies: sets.length,
        medianSeconds: median,
        samples,
        gbPerSecond: gbps,
        gflopsPerSecond: gflops,
        limitKind: c.limit ?? 'bytes',
        fractionOfLimit: null,
        fractionOfSpec: null,
      });
      log(
        `  ${label}${isa === null ? '' : ` [${isa}]`}: ${(median * 1e3).toFixed(3)} ms, ${gbps.toFixed(1)} ` +
          `GB/s${gflops === null ? '' : `, ${gflops.toFixed(1)} GFLOP/s`}` +
          (together ? ` (${samples} bursts, the levels in turn)` : ''),
      );
    }
    sets.forEach((set) => set.free());
  }
  const after = limits(' again');
  const dev = backends().cuda.devices[0];
  const spec = device === 'cuda' && dev ? cudaPeaks(dev) : null;
  return isas.map((isa, li) => {
    const b = before[li]!,
      a = after[li]!;
    const limitGbps = Math.max(b.bw.gbPerSecond, a.bw.gbPerSecond);
    const peak =
      device === 'cpu'
        ? { kind: PEAK_KIND, gflopsPerSecond: Math.max(b.peak, a.peak), before: b.peak, after: a.peak }
        : null;
    for (const row of rows[li]!) {
      const ofBytes = row.gbPerSecond / limitGbps;
      const ofFlops = peak && row.gflopsPerSecond !== null ? row.gflopsPerSecond / peak.gflopsPerSecond : null;
      // the roofline's time is the larger of the two limits' times, so its share is the larger share
      if (row.limitKind === 'bytes') row.fractionOfLimit = ofBytes;
      else if (row.limitKind === 'flops') row.fractionOfLimit = ofFlops;
      else row.fractionOfLimit = ofFlops === null ? ofBytes : Math.max(ofBytes, ofFlops);
      if (spec) {
        const tensor = row.dtype.startsWith('float16') || row.dtype.startsWith('bfloat16');
        if (row.limitKind === 'bytes')
          row.fractionOfSpec = spec.bandwidthGBs ? row.gbPerSecond / spec.bandwidthGBs : null;
        else if (tensor && spec.tensorGflops && row.gflopsPerSecond !== null)
          row.fractionOfSpec = row.gflopsPerSecond / spec.tensorGflops;
      }
    }
    return {
      device,
      isa,
      limit: { kind: b.bw.kind, gbPerSecond: limitGbps, before: b.bw.gbPerSecond, after: a.bw.gbPerSecond },
      peak,
      spec,
      rows: rows[li]!,
    };
  });
}

const LIMIT_MARK: Record<Limit, string> = { bytes: '', flops: ' FMA', roofline: ' roof' };

function fmtTime(s: number): string {
  return s >= 1e-3 ? `${(s * 1e3).toFixed(2)} ms` : `${(s * 1e6).toFixed(1)} us`;
}

/**
 * The CPU levels side by side, best first: each row's median per level, and each level's speed over the next lower
 * level's (time lower / time this); rows where a level is more than 5% slower than the one below it are counted.
 */
function levelTable(cpu: DeviceResult[]): string[] {
  const key = (r: Row): string => `${r.op}|${r.dtype}|${r.shape}`;
  const byLevel = cpu.map((r) => new Map(r.rows.map((row) => [key(row), row])));
  const ratios = cpu.slice(0, -1).map((r, i) => `${r.isa} / ${cpu[i + 1]!.isa}`);
  const out = [
    `CPU levels side by side (median per call; "a / b": b's time over a's, above 1 = a faster)`,
    `| op | dtype | shape | ${cpu.map((r) => r.isa).join(' | ')} | ${ratios.join(' | ')} |`,
    `| --- | --- | --- | ${cpu.map(() => '---').join(' | ')} | ${ratios.map(() => '---').join(' | ')} |`,
  ];
  let slower = 0;
  for (const row of cpu[0]!.rows) {
    const cells = byLevel.map((m) => m.get(key(row))?.medianSeconds ?? NaN);
    const rs = cells.slice(0, -1).map((t, i) => cells[i + 1]! / t);
    slower += rs.filter((x) => x < 0.95).length;
    out.push(
      `| ${row.op} | ${row.dtype} | ${row.shape} | ${cells.map(fmtTime).join(' | ')} | ` +
        `${rs.map((x) => x.toFixed(2)).join(' | ')} |`,
    );
  }
  out.push('', `rows where a level is more than 5% slower than the level below it: ${slower}`);
  return out;
}

async function main(): Promise<void> {
  const info = backends();
  const want = args.device === 'all' ? (['cpu', 'cuda'] as Device[]) : [args.device as Device];
  const devices = want.filter((d) => {
    if (d === 'cuda' && !info.cuda.available) {
      log(`cuda: skipped (${info.cuda.error ?? 'not available'})`);
      return false;
    }
    return true;
  });
  const machine = { ...machineInfo(), cuda: info.cuda };
  const commit = gitCommit() ?? 'unknown';
  const results: DeviceResult[] = [];
  const loadIsa = info.cpu.isa;
  const isas = !args.isa ? [loadIsa] : args.isa === 'all' ? info.cpu.isas : args.isa.split(',');
  for (const device of devices) {
    if (device !== 'cpu') {
      results.push(...(await benchDevice(device, args.quick, [null])));
      continue;
    }
    log(`cpu: levels ${isas.join(', ')}, each row's levels timed in turns of ~20 ms bursts`);
    results.push(...(await benchDevice(device, args.quick, isas)));
    setCpuIsa(loadIsa);
  }

  const lines: string[] = [];
  lines.push(`mini-vllm op benchmarks, commit ${commit}, ${new Date().toISOString()}`);
  lines.push(`machine: ${machineLine(machine)}`);
  for (const r of results) {
    const dev = r.device === 'cuda' ? `cuda: ${info.cuda.devices[0]?.name ?? ''}` : `cpu [${r.isa}]`;
    lines.push('');
    const lim = r.limit;
    lines.push(
      `${dev} limit: ${lim.kind} = ${lim.gbPerSecond.toFixed(1)} GB/s (before ${lim.before.toFixed(1)}, after ` +
        `${lim.after.toFixed(1)}; the higher is used)`,
    );
    if (r.peak)
      lines.push(
        `${dev} peak: ${r.peak.kind} = ${r.peak.gflopsPerSecond.toFixed(1)} GFLOP/s (before ` +
          `${r.peak.before.toFixed(1)}, after ${r.peak.after.toFixed(1)}; the higher is used)`,
      );
    else if (r.spec)
      lines.push(
        `${dev} spec: ${r.spec.bandwidthGBs?.toFixed(0) ?? '?'} GB/s, ${
          r.spec.tensorGflops === null ? '?' : (r.spec.tensorGflops / 1e3).toFixed(0)
        } TFLOP/s (${r.spec.kind})`,
      );
    else lines.push(`${dev} peak: not measured on this device; compute-bound rows show GFLOP/s only`);
    lines.push(
      `(large shapes rotate over ${(2 * lastLevelCacheBytes(r.device)) / 2 ** 20} MiB of tensors so each call comes ` +
        `from memory; small ones run from cache and can pass 100%)`,
    );
    lines.push(
      r.spec
        ? `('of limit': GB/s over the measured copy bandwidth; 'of spec': GB/s over the spec bandwidth, or, for ` +
            `f16/bf16 compute-bound rows, GFLOP/s over the tensor-core peak)`
        : `('of limit': GB/s over the bandwidth limit; marked FMA, GFLOP/s over the FMA peak; marked roof, the ` +
            `roofline's time (the larger of bytes / bandwidth and FLOPs / peak) over the median)`,
    );
    lines.push(
      `${'op'.padEnd(18)} ${'dtype'.padEnd(14)} ${'shape'.padEnd(36)} ${'median'.padStart(10)} ${'GB/s'.padStart(8)} ` +
        `${'GFLOP/s'.padStart(9)} ${'of limit'.padStart(10)}${r.spec ? ` ${'of spec'.padStart(9)}` : ''}`,
    );
    for (const row of r.rows) {
      const frac =
        row.fractionOfLimit === null ? '-' : `${(100 * row.fractionOfLimit).toFixed(0)}%${LIMIT_MARK[row.limitKind]}`;
      const gf = row.gflopsPerSecond === null ? '' : row.gflopsPerSecond.toFixed(1);
      const ofSpec = row.fractionOfSpec;
      const spec =
        ofSpec === null
          ? '-'
          : `${(100 * ofSpec).toFixed(ofSpec < 0.01 ? 2 : 0)}%${row.limitKind === 'flops' ? ' TC' : ''}`;
      lines.push(
        `${row.op.padEnd(18)} ${row.dtype.padEnd(14)} ${row.shape.padEnd(36)} ` +
          `${fmtTime(row.medianSeconds).padStart(10)} ${row.gbPerSecond.toFixed(1).padStart(8)} ${gf.padStart(9)} ` +
          `${frac.padStart(10)}${r.spec ? ` ${spec.padStart(9)}` : ''}`,
      );
    }
  }
  const cpu = results.filter((r) => r.device === 'cpu');
  if (cpu.length > 1) lines.push('', ...levelTable(cpu));
  console.log(lines.join('\n'));

  const file =
    args.json ??
    join(repoRoot, 'bench', 'results', `ops-${devices.join('-') || 'none'}${args.quick ? '-quick' : ''}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify({ commit, date: new Date().toISOString(), quick: args.quick, machine, results }, null, 2)}\n`,
  );
  log(`results written to ${file}`);
}

await main();
