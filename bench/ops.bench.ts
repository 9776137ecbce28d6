// Op microbenchmarks (benny): median time and effective bandwidth (or FLOP/s) of every op, beside the machine's
// own limits measured in the same run: a STREAM-like read and the fp32 FMA peak on the CPU, a device-to-device
// copy on CUDA.
//
//   npm run bench [-- --quick] [--device cpu|cuda|all] [--filter <regex>] [--json <file>]
import b from 'benny';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { type Device, type FloatDType, Tensor, backends, itemSize, ops, synchronize } from '../lib/index.js';
import { native } from '../lib/native.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    device: { type: 'string', default: 'all' },
    filter: { type: 'string' },
    json: { type: 'string' },
  },
});

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const log = (...a: unknown[]): void => console.error(...a); // progress to stderr; the table is the output

/** Which physical limit a case is compared with: the read bandwidth or the FMA peak. */
type Limit = 'bytes' | 'flops';

interface OpCase {
  op: string;
  /** storage dtype; "x/w y" for activations x with weights y */
  dtype: string;
  shape: string;
  /** bytes read + written by one call (for attention: the K/V read) */
  bytes: number;
  /** floating-point operations of one call, where compute is the limit (GEMM, prefill attention) */
  flops?: number;
  /** makes the tensors, returns the call and a cleanup */
  setup: (device: Device) => { run: () => void; free: () => void };
  /** default 'bytes' */
  limit?: Limit;
}
type LimitedCase = OpCase & { limit: Limit };

function rmsNormCase(tokens: number, hidden: number, dtype: FloatDType): OpCase {
  return {
    op: 'rmsNorm', dtype, shape: `[${tokens}, ${hidden}]`,
    bytes: (2 * tokens * hidden + hidden) * itemSize(dtype),
    setup: (device) => {
      const x = Tensor.full([tokens, hidden], 0.5, { dtype, device });
      const out = Tensor.empty([tokens, hidden], { dtype, device });
      const w = Tensor.full([hidden], 1, { dtype, device });
      return { run: () => ops.rmsNorm(out, x, w, 1e-6), free: () => [x, out, w].forEach((t) => t.dispose()) };
    },
  };
}

function fusedAddRmsNormCase(tokens: number, hidden: number, dtype: FloatDType): OpCase {
  return {
    op: 'fusedAddRmsNorm', dtype, shape: `[${tokens}, ${hidden}]`,
    bytes: (4 * tokens * hidden + hidden) * itemSize(dtype),
    setup: (device) => {
      const x = Tensor.full([tokens, hidden], 0.5, { dtype, device });
      const r = Tensor.full([tokens, hidden], 0.25, { dtype, device });
      const w = Tensor.full([hidden], 1, { dtype, device });
      return { run: () => ops.fusedAddRmsNorm(x, r, w, 1e-6), free: () => [x, r, w].forEach((t) => t.dispose()) };
    },
  };
}

function siluAndMulCase(tokens: number, d: number, dtype: FloatDType): OpCase {
  return {
    op: 'siluAndMul', dtype, shape: `[${tokens}, 2 x ${d}]`,
    bytes: 3 * tokens * d * itemSize(dtype),
    setup: (device) => {
      const x = Tensor.full([tokens, 2 * d], 0.5, { dtype, device });
      const out = Tensor.empty([tokens, d], { dtype, device });
      return { run: () => ops.siluAndMul(out, x), free: () => [x, out].forEach((t) => t.dispose()) };
    },
  };
}

// Llama-3-8B attention shapes: 32 query heads, 8 KV heads, head size 128, NeoX style.
function rotaryCase(tokens: number, dtype: FloatDType): OpCase {
  const heads = 32;
  const kvHeads = 8;
  const headSize = 128;
  const maxPosition = 8192;
  return {
    op: 'rotaryEmbedding', dtype, shape: `${tokens} tok, ${heads}/${kvHeads} heads x ${headSize}`,
    // q and k read and written, one cos/sin row (float32) and one position per token
    bytes: tokens * (2 * (heads + kvHeads) * headSize * itemSize(dtype) + headSize * 4 + 4),
    setup: (device) => {
      const positions = Tensor.fromArray(Array.from({ length: tokens }, (_, i) => (i * 7919) % maxPosition), [tokens], { dtype: 'int32', device });
      const q = Tensor.full([tokens, heads * headSize], 0.5, { dtype, device });
      const k = Tensor.full([tokens, kvHeads * headSize], 0.5, { dtype, device });
      const cache = ops.ropeCosSinCache(headSize, maxPosition, 500000, { device });
      return {
        run: () => ops.rotaryEmbedding(positions, q, k, headSize, cache, true),
        free: () => [positions, q, k, cache].forEach((t) => t.dispose()),
      };
    },
  };
}

// Linear at Llama-2-7B layer shapes: [outFeatures, inFeatures] of q/k/v/o (4096 x 4096) and gate/up (11008 x 4096).
function linearCase(tokens: number, outF: number, inF: number, dtype: FloatDType, wdtype: FloatDType): LimitedCase {
  const weightBytes = outF * inF * itemSize(wdtype);
  const gemm = tokens > 16;
  return {
    op: gemm ? 'linear GEMM' : 'linear GEMV', dtype: wdtype === dtype ? dtype : `${dtype}/w ${wdtype}`,
    shape: `${tokens} x ${inF} -> ${outF}`,
    bytes: weightBytes + tokens * (inF + outF) * itemSize(dtype),
    flops: 2 * tokens * outF * inF,
    limit: gemm ? 'flops' : 'bytes',
    setup: (device) => {
      const x = Tensor.full([tokens, inF], 0.5, { dtype, device });
      const w = Tensor.full([outF, inF], 0.01, { dtype: wdtype, device });
      const out = Tensor.empty([tokens, outF], { dtype, device });
      return { run: () => ops.linear(out, x, w), free: () => [x, w, out].forEach((t) => t.dispose()) };
    },
  };
}

// Llama-3-8B attention: 32 query heads, 8 KV heads, head size 128, block size 16.
const ATTN = { heads: 32, kvHeads: 8, headSize: 128, blockSize: 16 };

/** Sequences of `ctx` tokens each, in shuffled blocks of a pool; `qLen` query tokens per sequence. */
function attentionSetup(device: Device, dtype: FloatDType, seqs: number, ctx: number, qLen: number): { run: () => void; free: () => void } {
  const { heads, kvHeads, headSize, blockSize } = ATTN;
  const perSeq = Math.ceil(ctx / blockSize);
  const numBlocks = seqs * perSeq;
  // a fixed shuffle (LCG) so sequences do not read consecutive memory
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  let state = 12345;
  for (let i = numBlocks - 1; i > 0; --i) {
    state = (state * 1103515245 + 12345) >>> 0;
    const j = state % (i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const cacheShape = [numBlocks, blockSize, kvHeads, headSize];
  const keyCache = Tensor.full(cacheShape, 0.01, { dtype, device });
  const valueCache = Tensor.full(cacheShape, 0.02, { dtype, device });
  const tokens = seqs * qLen;
  const query = Tensor.full([tokens, heads, headSize], 0.1, { dtype, device });
  const out = Tensor.empty([tokens, heads, headSize], { dtype, device });
  const int = (data: number[], shape: number[]): Tensor => Tensor.fromArray(data, shape, { dtype: 'int32', device });
  const meta = {
    queryStartLoc: int(Array.from({ length: seqs + 1 }, (_, i) => i * qLen), [seqs + 1]),
    seqLens: int(Array.from({ length: seqs }, () => ctx), [seqs]),
    blockTables: int(ids, [seqs, perSeq]),
    scale: 1 / Math.sqrt(headSize),
    maxSeqLen: ctx,
    maxQueryLen: qLen,
  };
  return {
    run: () => ops.pagedAttention(out, query, keyCache, valueCache, meta),
    free: () => [keyCache, valueCache, query, out, meta.queryStartLoc, meta.seqLens, meta.blockTables].forEach((t) => t.dispose()),
  };
}

function decodeAttentionCase(seqs: number, ctx: number, dtype: FloatDType): LimitedCase {
  const { heads, kvHeads, headSize } = ATTN;
  return {
    op: 'attention decode', dtype, shape: `${seqs} seq x ${ctx} ctx, ${heads}/${kvHeads}x${headSize}`,
    // every sequence's K and V are read once
    bytes: 2 * seqs * ctx * kvHeads * headSize * itemSize(dtype),
    flops: 4 * seqs * ctx * heads * headSize,
    limit: 'bytes',
    setup: (device) => attentionSetup(device, dtype, seqs, ctx, 1),
  };
}

function prefillAttentionCase(seqs: number, len: number, dtype: FloatDType): LimitedCase {
  const { heads, kvHeads, headSize } = ATTN;
  return {
    op: 'attention prefill', dtype, shape: `${seqs} x ${len}-token prompt, ${heads}/${kvHeads}x${headSize}`,
    bytes: 2 * seqs * len * kvHeads * headSize * itemSize(dtype),
    // causal: q·k and p·v over len (len + 1) / 2 pairs per head
    flops: 4 * seqs * heads * headSize * ((len * (len + 1)) / 2),
    limit: 'flops',
    setup: (device) => attentionSetup(device, dtype, seqs, len, len),
  };
}

function embeddingCase(tokens: number, dtype: FloatDType): LimitedCase {
  const vocab = 32000;
  const hidden = 4096;
  return {
    op: 'embedding', dtype, shape: `${tokens} ids, ${vocab} x ${hidden}`,
    bytes: 2 * tokens * hidden * itemSize(dtype) + 4 * tokens,
    limit: 'bytes',
    setup: (device) => {
      const table = Tensor.full([vocab, hidden], 0.5, { dtype, device });
      const ids = Tensor.fromArray(Array.from({ length: tokens }, (_, i) => (i * 7919) % vocab), [tokens], { dtype: 'int32', device });
      const out = Tensor.empty([tokens, hidden], { dtype, device });
      return { run: () => ops.embedding(out, ids, table), free: () => [table, ids, out].forEach((t) => t.dispose()) };
    },
  };
}

function addCase(tokens: number, hidden: number, dtype: FloatDType): LimitedCase {
  return {
    op: 'add', dtype, shape: `[${tokens}, ${hidden}]`,
    bytes: 3 * tokens * hidden * itemSize(dtype),
    limit: 'bytes',
    setup: (device) => {
      const a = Tensor.full([tokens, hidden], 0.5, { dtype, device });
      const b2 = Tensor.full([tokens, hidden], 0.25, { dtype, device });
      const out = Tensor.empty([tokens, hidden], { dtype, device });
      return { run: () => ops.add(out, a, b2), free: () => [a, b2, out].forEach((t) => t.dispose()) };
    },
  };
}

// The dummy-weight generator: one 11008 x 4096 matrix per call, write-only (counted against the read limit).
function fillUniformCase(dtype: FloatDType): LimitedCase {
  const [rows, cols] = [11008, 4096];
  return {
    op: 'fillUniform', dtype, shape: `[${rows}, ${cols}]`,
    bytes: rows * cols * itemSize(dtype),
    limit: 'bytes',
    setup: (device) => {
      const out = Tensor.empty([rows, cols], { dtype, device });
      return { run: () => ops.fillUniform(out, -1e-3, 1e-3, 1), free: () => out.dispose() };
    },
  };
}

function cases(quick: boolean, device: Device): OpCase[] {
  const dtypes: FloatDType[] = quick ? ['float32'] : ['float32', 'float16', 'bfloat16'];
  // [1, 8]: almost no work, so its time is the fixed cost of one op call (argument unpacking and dispatch).
  const out: OpCase[] = [{ ...rmsNormCase(1, 8, 'float32'), op: 'rmsNorm (call)' }];
  for (const dtype of dtypes) {
    for (const tokens of [7, 8192]) {
      out.push(rmsNormCase(tokens, 4096, dtype));
      out.push(fusedAddRmsNormCase(tokens, 4096, dtype));
      out.push(siluAndMulCase(tokens, 4096, dtype));
      out.push(rotaryCase(tokens, dtype));
    }
    out.push(embeddingCase(7, dtype), embeddingCase(8192, dtype));
    out.push(addCase(7, 4096, dtype), addCase(8192, 4096, dtype));
    out.push(fillUniformCase(dtype));
  }
  // linear: GEMV at decode batch sizes against the read bandwidth, GEMM against the FMA peak
  const gemvTokens = quick ? [1] : [1, 4, 16];
  for (const dtype of dtypes)
    for (const [outF, inF] of [[4096, 4096], [11008, 4096]] as const)
      for (const tokens of gemvTokens) out.push(linearCase(tokens, outF, inF, dtype, dtype));
  if (!quick) for (const w of ['float16', 'bfloat16'] as const) out.push(linearCase(1, 11008, 4096, 'float32', w));
  const gemmTokens = quick ? [128] : device === 'cuda' ? [128, 512, 4096] : [128, 512];
  for (const dtype of dtypes)
    for (const tokens of gemmTokens) out.push(linearCase(tokens, 4096, 4096, dtype, dtype));
  if (!quick) out.push(linearCase(512, 11008, 4096, 'float32', 'float32'));
  // attention: decode as K/V bandwidth over a batch x context sweep, prefill as FLOP/s
  const decode: [number, number][] = device === 'cuda' ? [[1, 2048], [32, 1024], [64, 4096]] : quick ? [[1, 2048]] : [[1, 2048], [8, 1024], [16, 4096]];
  const prefill: [number, number][] = device === 'cuda' ? [[1, 4096], [8, 1024]] : quick ? [[1, 256]] : [[1, 512], [4, 256]];
  const attnDtypes: FloatDType[] = quick ? ['float32'] : device === 'cuda' ? ['float16', 'bfloat16'] : ['float32', 'bfloat16'];
  for (const dtype of attnDtypes) {
    for (const [seqs, ctx] of decode) out.push(decodeAttentionCase(seqs, ctx, dtype));
    for (const [seqs, len] of prefill) out.push(prefillAttentionCase(seqs, len, dtype));
  }
  return out;
}

interface Row {
  device: Device;
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
}

/** Median seconds per call of `run` via benny. On CUDA each call includes a synchronize. */
async function timeWithBenny(name: string, run: () => void, quick: boolean): Promise<{ median: number; samples: number }> {
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

interface LimitMeasurement {
  kind: string;
  bytes: number;
  medianSeconds: number;
  gbPerSecond: number;
}

interface DeviceResult {
  device: Device;
  /** the higher of the two measurements is the limit each row is compared with */
  limit: { kind: string; gbPerSecond: number; before: LimitMeasurement; after: LimitMeasurement };
  /** fp32 FMA peak in GFLOP/s, measured before and after the ops (CPU only; null on CUDA) */
  peak: { kind: string; gflopsPerSecond: number; before: number; after: number } | null;
  rows: Row[];
}

/** fp32 FMA throughput of every CPU thread: independent FMA chains for one second. */
function measurePeak(): number {
  return native.fmaPeak(1);
}
const PEAK_KIND = 'fp32 FMA peak (independent vector FMA chains on every thread, 1 s)';

/** The device's physical limit in GB/s, measured now: 1 GiB so no cache holds it. */
async function measureLimit(device: Device, quick: boolean): Promise<LimitMeasurement> {
  const n = (1 << 30) / 4;
  if (device === 'cpu') {
    const buf = Tensor.full([n], 1, { device });
    const t = await timeWithBenny('streamRead 1 GiB', () => native.streamRead(buf), quick);
    buf.dispose();
    return { kind: 'STREAM-like read (sum of 1 GiB float32, all threads)', bytes: n * 4, medianSeconds: t.median, gbPerSecond: (n * 4) / t.median / 1e9 };
  }
  const src = Tensor.full([n], 1, { device });
  const dst = Tensor.empty([n], { device });
  const s = timeWithEvents(() => dst.copyFrom(src), 10);
  [src, dst].forEach((t) => t.dispose());
  return { kind: 'device-to-device copy of 1 GiB (read + write)', bytes: 2 * n * 4, medianSeconds: s, gbPerSecond: (2 * n * 4) / s / 1e9 };
}

async function benchDevice(device: Device, quick: boolean): Promise<DeviceResult> {
  // Measured before and after the ops; the higher is the limit, so a noisy moment cannot flatter the ops.
  const before = await measureLimit(device, quick);
  log(`${device}: ${before.kind}: ${before.gbPerSecond.toFixed(1)} GB/s`);
  const peakBefore = device === 'cpu' ? measurePeak() : NaN;
  if (device === 'cpu') log(`cpu: ${PEAK_KIND}: ${peakBefore.toFixed(1)} GFLOP/s`);
  const rows: Row[] = [];
  const filter = args.filter ? new RegExp(args.filter) : null;
  for (const c of cases(quick, device)) {
    const label = `${c.op} ${c.dtype} ${c.shape}`;
    if (filter && !filter.test(label)) continue;
    const sets = Array.from({ length: copiesFor(c.bytes, device) }, () => c.setup(device));
    let next = 0;
    const run = (): void => sets[next++ % sets.length]!.run();
    const free = (): void => sets.forEach((set) => set.free());
    let median: number;
    let samples: number;
    if (device === 'cpu') {
      ({ median, samples } = await timeWithBenny(label, run, quick));
    } else {
      const wall = await timeWithBenny(label, () => { run(); synchronize('cuda'); }, quick);
      samples = wall.samples;
      median = timeWithEvents(run, 20); // kernel time without the per-call synchronize
    }
    free();
    const gbps = c.bytes / median / 1e9;
    const gflops = c.flops === undefined ? null : c.flops / median / 1e9;
    rows.push({ device, op: c.op, dtype: c.dtype, shape: c.shape, bytes: c.bytes, copies: sets.length, medianSeconds: median, samples, gbPerSecond: gbps, gflopsPerSecond: gflops, limitKind: c.limit ?? 'bytes', fractionOfLimit: null });
    log(`  ${label}: ${(median * 1e3).toFixed(3)} ms, ${gbps.toFixed(1)} GB/s${gflops === null ? '' : `, ${gflops.toFixed(1)} GFLOP/s`}`);
  }
  const after = await measureLimit(device, quick);
  log(`${device}: ${after.kind} again: ${after.gbPerSecond.toFixed(1)} GB/s`);
  const peakAfter = device === 'cpu' ? measurePeak() : NaN;
  if (device === 'cpu') log(`cpu: ${PEAK_KIND} again: ${peakAfter.toFixed(1)} GFLOP/s`);
  const limitGbps = Math.max(before.gbPerSecond, after.gbPerSecond);
  const peak = device === 'cpu' ? { kind: PEAK_KIND, gflopsPerSecond: Math.max(peakBefore, peakAfter), before: peakBefore, after: peakAfter } : null;
  for (const row of rows) {
    if (row.limitKind === 'bytes') row.fractionOfLimit = row.gbPerSecond / limitGbps;
    else row.fractionOfLimit = peak && row.gflopsPerSecond !== null ? row.gflopsPerSecond / peak.gflopsPerSecond : null;
  }
  return { device, limit: { kind: before.kind, gbPerSecond: limitGbps, before, after }, peak, rows };
}

function commit(): string {
  if (process.env.MINI_VLLM_COMMIT) return process.env.MINI_VLLM_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function fmtTime(s: number): string {
  return s >= 1e-3 ? `${(s * 1e3).toFixed(2)} ms` : `${(s * 1e6).toFixed(1)} us`;
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
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    logicalCores: os.cpus().length,
    memoryBytes: os.totalmem(),
    kernelThreads: info.cpu.threads,
    simd: info.cpu.simd,
    cpuArch: info.cpu.arch,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    cuda: info.cuda,
  };
  const results: DeviceResult[] = [];
  for (const device of devices) results.push(await benchDevice(device, args.quick));

  const lines: string[] = [];
  lines.push(`mini-vllm op benchmarks, commit ${commit()}, ${new Date().toISOString()}`);
  lines.push(`machine: ${machine.cpu}, ${machine.logicalCores} logical cores, ${machine.kernelThreads} kernel threads (${machine.simd}, -march=${machine.cpuArch}), ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, node ${machine.node}`);
  for (const r of results) {
    const dev = r.device === 'cuda' ? `cuda: ${info.cuda.devices[0]?.name ?? ''}` : 'cpu';
    lines.push('');
    const lim = r.limit;
    lines.push(`${dev} limit: ${lim.kind} = ${lim.gbPerSecond.toFixed(1)} GB/s (before ${lim.before.gbPerSecond.toFixed(1)}, after ${lim.after.gbPerSecond.toFixed(1)}; the higher is used)`);
    if (r.peak) lines.push(`${dev} peak: ${r.peak.kind} = ${r.peak.gflopsPerSecond.toFixed(1)} GFLOP/s (before ${r.peak.before.toFixed(1)}, after ${r.peak.after.toFixed(1)}; the higher is used)`);
    else lines.push(`${dev} peak: not measured on this device; compute-bound rows show GFLOP/s only`);
    lines.push(`(large shapes rotate over ${(2 * lastLevelCacheBytes(r.device)) / 2 ** 20} MiB of tensors so each call comes from memory; small ones run from cache and can pass 100%)`);
    lines.push(`('of limit': GB/s over the bandwidth limit, or, marked FMA, GFLOP/s over the FMA peak)`);
    lines.push(`${'op'.padEnd(18)} ${'dtype'.padEnd(14)} ${'shape'.padEnd(36)} ${'median'.padStart(10)} ${'GB/s'.padStart(8)} ${'GFLOP/s'.padStart(9)} ${'of limit'.padStart(10)}`);
    for (const row of r.rows) {
      const frac = row.fractionOfLimit === null ? '-' : `${(100 * row.fractionOfLimit).toFixed(0)}%${row.limitKind === 'flops' ? ' FMA' : ''}`;
      const gf = row.gflopsPerSecond === null ? '' : row.gflopsPerSecond.toFixed(1);
      lines.push(`${row.op.padEnd(18)} ${row.dtype.padEnd(14)} ${row.shape.padEnd(36)} ${fmtTime(row.medianSeconds).padStart(10)} ${row.gbPerSecond.toFixed(1).padStart(8)} ${gf.padStart(9)} ${frac.padStart(10)}`);
    }
  }
  console.log(lines.join('\n'));

  const file = args.json ?? join(repoRoot, 'bench', 'results', `ops-${devices.join('-') || 'none'}${args.quick ? '-quick' : ''}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ commit: commit(), date: new Date().toISOString(), quick: args.quick, machine, results }, null, 2)}\n`);
  log(`results written to ${file}`);
}

await main();
