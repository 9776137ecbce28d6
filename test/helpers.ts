// Test helpers: seeded data, a closeness check that names the worst element, and the device loop.
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

import {
  type Device,
  type FloatDType,
  type KvCache,
  type LlamaConfig,
  type LlamaModel,
  Tensor,
  backends,
  setCpuIsa,
  synchronize,
} from '../lib/index.js';
import { attentionScale } from '../lib/model/config.js';
import { allocateKvCache, disposeKvCache } from '../lib/engine/kv-budget.js';
import type { WeightSource } from '../lib/formats/file.js';
import { dequantizeRows, quantRowBytes } from '../lib/quant/formats.js';
import { type ReferenceWeights, roundArray } from '../lib/reference/index.js';

/** mulberry32: a small seeded PRNG with uniform output in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n normal samples with mean `mean` and standard deviation `std` (Box-Muller). */
export function randn(rand: () => number, n: number, std = 1, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const th = 2 * Math.PI * rand();
    out[i] = mean + std * r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(th);
  }
  return out;
}

/** n samples uniform in [-bound, bound). */
export function uniform(rand: () => number, n: number, bound: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) out[i] = (2 * rand() - 1) * bound;
  return out;
}

export function randint(rand: () => number, n: number, lo: number, hi: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; ++i) out[i] = lo + Math.floor(rand() * (hi - lo));
  return out;
}

/** `count` distinct integers drawn from [0, n) in random order (Fisher-Yates on a prefix): block ids, slots. */
export function drawDistinct(rand: () => number, n: number, count: number): number[] {
  const ids = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; ++i) {
    const j = i + Math.floor(rand() * (n - i));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids.slice(0, count);
}

/** A linear layer's seeded operands: x uniform in [-1, 1), w ~ N(0, 1/inF) (outputs O(1)), bias uniform. */
export function operands(
  seed: number,
  tokens: number,
  inF: number,
  outF: number,
): { x: Float32Array; w: Float32Array; bias: Float32Array } {
  const rand = prng(seed);
  const x = uniform(rand, tokens * inF, 1);
  const w = randn(rand, outF * inF, 1 / Math.sqrt(inF));
  return { x, w, bias: uniform(rand, outF, 1) };
}

/**
 * Skips, saying why: in a test, that test; in a before() hook, every test of its suite. The reason goes into the title
 * ("... (skipped: why)"), which the report and CI's check of required suites read; a bare this.skip() says nothing
 * (test/repository.test.ts refuses one).
 */
export function skipBecause(ctx: Mocha.Context, reason: string): never {
  const runnable = ctx.test;
  const target = (runnable as { type?: string } | undefined)?.type === 'hook' ? runnable?.parent : runnable;
  if (target && !target.title.includes('(skipped: ')) target.title = `${target.title} (skipped: ${reason})`;
  ctx.skip();
}

export interface Tolerance {
  atol: number;
  rtol: number;
}

/**
 * Per storage dtype: about two units in the last place, since kernel (fp32) and reference (fp64) may round
 * an intermediate to opposite sides of a boundary once each.
 */
export const TOL: Record<FloatDType, Tolerance> = {
  float32: { atol: 1e-5, rtol: 1e-5 },
  float16: { atol: 1e-3, rtol: 2e-3 },
  bfloat16: { atol: 1e-2, rtol: 1.6e-2 },
};

/** Fails unless |actual - expected| <= atol + rtol·|expected| everywhere; NaN anywhere in actual fails. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  label = 'values',
): void {
  expect(actual.length, `${label}: length`).to.equal(expected.length);
  let bad = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < expected.length; ++i) {
    const a = actual[i]!;
    const e = expected[i]!;
    const excess = Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e));
    const over = Number.isNaN(excess) ? Infinity : excess;
    if (over > 0) {
      bad++;
      if (over > worstExcess) {
        worstExcess = over;
        worst = i;
      }
    }
  }
  if (bad > 0) {
    expect.fail(
      `${label}: ${bad} of ${expected.length} elements out of tolerance (atol ${tol.atol}, rtol ${tol.rtol}); ` +
        `worst at [${worst}]: got ${actual[worst]}, expected ${expected[worst]}`,
    );
  }
}

/** Unit roundoff (half an ulp at 1) of each storage dtype: 2^-24, 2^-11, 2^-8. */
export const UNIT_ROUNDOFF: Record<FloatDType, number> = { float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 };

/** Half the spacing of `dtype`'s values around v: the most that storing an exact v in `dtype` can move it. */
export function halfUlp(dtype: FloatDType, v: number): number {
  const a = Math.abs(v);
  const minNormal = { float32: 2 ** -126, float16: 2 ** -14, bfloat16: 2 ** -126 }[dtype];
  const bits = { float32: 23, float16: 10, bfloat16: 7 }[dtype];
  const e = a < minNormal ? Math.log2(minNormal) : Math.floor(Math.log2(a));
  return 2 ** (e - bits - 1);
}

/**
 * Fails unless |actual[i] - exact[i]| <= bound[i] everywhere (a bound per element, derived by the caller from the
 * kernel's arithmetic); NaN fails. Names the worst element and its bound.
 */
export function expectWithin(
  actual: ArrayLike<number>,
  exact: ArrayLike<number>,
  bound: ArrayLike<number>,
  label = 'values',
): void {
  expect(actual.length, `${label}: length`).to.equal(exact.length);
  let bad = 0;
  let worst = -1;
  let worstSeen = 0; // the largest |error| / bound: 1 means an element used its whole bound
  for (let i = 0; i < exact.length; ++i) {
    const ratio = Math.abs(actual[i]! - exact[i]!) / bound[i]!;
    const r = Number.isNaN(ratio) ? Infinity : ratio;
    if (r > worstSeen) [worst, worstSeen] = [i, r];
    if (r > 1) bad++;
  }
  recordRatio(label, worstSeen);
  if (bad > 0) {
    expect.fail(
      `${label}: ${bad} of ${exact.length} elements outside their bound; worst at [${worst}]: got ${actual[worst]}, ` +
        `exact ${exact[worst]}, bound ${bound[worst]} (${worstSeen.toPrecision(3)}x)`,
    );
  }
}

/**
 * With MINI_VLLM_TEST_RATIOS=<file>, each bounded check appends "<test title>\t<label>\t<worst error / bound>" there:
 * how much of its bound a check uses (bench/scripts/tolerance-audit.mjs tabulates it). Otherwise nothing.
 */
if (process.env['MINI_VLLM_TEST_RATIOS'] && typeof beforeEach === 'function')
  beforeEach(function () {
    (globalThis as { currentTestTitle?: string }).currentTestTitle = this.currentTest?.fullTitle();
  });
export function recordRatio(label: string, ratio: number): void {
  const file = process.env['MINI_VLLM_TEST_RATIOS'];
  if (!file) return;
  const title = (globalThis as { currentTestTitle?: string }).currentTestTitle ?? '';
  appendFileSync(file, `${title}\t${label}\t${ratio}\n`);
}

/** Asserts fn throws an instance of `type` whose message matches `pattern`. */
export function expectThrow(fn: () => unknown, type: new (...a: never[]) => Error, pattern: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${type.name} matching ${pattern}`).to.be.instanceOf(type);
  expect((thrown as Error).message).to.match(pattern);
}

/** expectThrow for a promise: it must reject with `type` and a message matching `pattern`. */
export async function expectReject(
  p: Promise<unknown>,
  type: new (...a: never[]) => Error,
  pattern: RegExp,
): Promise<void> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${type.name} matching ${pattern}`).to.be.instanceOf(type);
  expect((thrown as Error).message).to.match(pattern);
}

const cuda = backends().cuda;
/**
 * The CUDA device is the emulated one (npm run test:emu): a test whose shape is too large to emulate in time runs a
 * smaller one on it, and says so in its title.
 */
export const emulated = cuda.emulated;
/** Whether a test on `device` runs on the emulated device. */
export const onEmulator = (device: Device): boolean => device === 'cuda' && emulated;
/** Set MINI_VLLM_REQUIRE_CUDA=1 on a GPU machine: then a missing device fails the suite instead of skipping. */
const requireCuda = process.env.MINI_VLLM_REQUIRE_CUDA === '1';

/**
 * Runs `body` once per device inside describe(`<title> on <device>`). Where CUDA is not available, the CUDA
 * suite's title says why and every test in it is reported as skipped.
 */
export function describeDevices(title: string, body: (device: Device) => void): void {
  describeOn(title, body, false);
}

/**
 * describeDevices for a kernel family's suite: the CPU suite runs once per CPU level this machine runs (cpu/level.h),
 * each against the same reference. The level in use at load keeps the plain title; the others say theirs:
 * `<title> on cpu [avx2]`.
 */
export function describeKernel(title: string, body: (device: Device) => void): void {
  describeOn(title, body, true);
}

function describeOn(title: string, body: (device: Device) => void, eachCpuIsa: boolean): void {
  for (const device of ['cpu', 'cuda'] as const) {
    if (device === 'cpu' && eachCpuIsa) {
      describeEachCpuIsa(`${title} on cpu`, () => body('cpu'));
      continue;
    }
    const skip = device === 'cuda' && !cuda.available && !requireCuda;
    const name = skip ? `${title} on cuda (skipped: ${cuda.error ?? 'CUDA not available'})` : `${title} on ${device}`;
    describe(name, function () {
      if (skip) {
        before(function () {
          this.skip(); // the suite's title says why
        });
      }
      body(device);
    });
  }
}

/** The CPU level in use at load, and every level this build holds that this machine runs (best first). */
export const loadCpuIsa = backends().cpu.isa;
export const cpuIsas = backends().cpu.isas;

/**
 * Runs `body` once per CPU level in `cpuIsas`, inside describe(title) for the level in use at load and
 * describe(`${title} [<level>]`) for each other, with that level set around it (setCpuIsa).
 */
export function describeEachCpuIsa(title: string, body: (isa: string) => void): void {
  for (const isa of [loadCpuIsa, ...cpuIsas.filter((i) => i !== loadCpuIsa)]) {
    describe(isa === loadCpuIsa ? title : `${title} [${isa}]`, function () {
      if (isa !== loadCpuIsa) {
        before(() => setCpuIsa(isa));
        after(() => setCpuIsa(loadCpuIsa));
      }
      body(isa);
    });
  }
}

/**
 * A suite that needs a CUDA device: where none is present its title says why and every test is reported as skipped
 * (MINI_VLLM_REQUIRE_CUDA=1 runs it anyway, so a missing device fails).
 */
export function describeCuda(title: string, body: () => void): void {
  const skip = !cuda.available && !requireCuda;
  describe(skip ? `${title} (skipped: ${cuda.error ?? 'CUDA not available'})` : title, function () {
    if (skip) {
      before(function () {
        this.skip(); // the suite's title says why
      });
    }
    body();
  });
}

/** Tensor of `data` rounded to dtype on device, and the values it really holds (for the reference). */
export function upload(
  data: ArrayLike<number>,
  shape: number[],
  dtype: FloatDType,
  device: Device,
): [Tensor, Float32Array] {
  const t = Tensor.fromArray(data, shape, { dtype, device });
  return [t, t.toArray() as Float32Array];
}

/** A tensor full of NaN, so any element a kernel forgets to write fails the comparison. */
export function poisoned(shape: number[], dtype: FloatDType, device: Device): Tensor {
  return Tensor.full(shape, NaN, { dtype, device });
}

/**
 * The environment for a test's child process: this one's, without MINI_VLLM_EMU_DIGEST (the emulated device's digest of
 * the suites' device-to-host bytes, test/emu/run.mjs: a child writing its own would stand in for theirs).
 */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['MINI_VLLM_EMU_DIGEST'];
  return env;
}

/** The shared test models (../shared/models beside the repository, or $MINI_VLLM_MODELS), or null where absent. */
export function sharedModels(): string | null {
  const dir = process.env['MINI_VLLM_MODELS'] ?? fileURLToPath(new URL('../../../shared/models/', import.meta.url));
  return existsSync(join(dir, 'stories260K', 'golden.json')) ? dir : null;
}

/**
 * A model's weights by Hugging Face name as float32 (quantised tensors dequantised by the reference dequantiser), for
 * the float64 reference forward (lib/reference/llama.ts); `dtype` rounds them as a model of that dtype holds them.
 */
export function referenceWeights(source: WeightSource, numLayers: number, dtype?: FloatDType): ReferenceWeights {
  const layer = ['input_layernorm', 'post_attention_layernorm', 'self_attn.q_proj', 'self_attn.k_proj']
    .concat(['self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'])
    .flatMap((n) => Array.from({ length: numLayers }, (_, l) => `model.layers.${l}.${n}.weight`));
  const weights: ReferenceWeights = new Map();
  for (const name of ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight', ...layer]) {
    if (!source.has(name)) continue;
    const [rows, cols = 1] = source.shape(name);
    const q = source.quantType?.(name);
    const w = q ? dequantizeRows(q, source.readRaw!(name, 0, rows!), 0, quantRowBytes(q, cols), rows!, cols) : null;
    const data = w ?? source.read(name, 0, rows!);
    weights.set(name, dtype ? Float32Array.from(roundArray(data, dtype)) : data);
  }
  return weights;
}

/** The logits of every position of one sequence fed one token a step through the paged cache (decode steps). */
export function decodeLogits(model: LlamaModel, tokens: readonly number[]): Float32Array[] {
  const kv = allocateKvCache(model, Math.ceil(tokens.length / 16), 16);
  const table = [Array.from({ length: kv.numBlocks }, (_, i) => i)];
  try {
    return tokens.map((id, pos) =>
      forwardLogits(model, kv, {
        tokenIds: [id],
        positions: [pos],
        slotMapping: [pos],
        logitsIndices: [0],
        queryStartLoc: [0, 1],
        seqLens: [pos + 1],
        blockTables: table,
      }),
    );
  } finally {
    disposeKvCache(kv);
  }
}

/** One step's inputs as host arrays; blockTables has one row of block ids per sequence. */
export interface StepArrays {
  tokenIds: number[];
  positions: number[];
  slotMapping: number[];
  queryStartLoc: number[];
  seqLens: number[];
  blockTables: number[][];
  logitsIndices: number[];
}

/** Runs one forward step of `model` on these inputs (made as int32 tensors and freed here); its logits on the host. */
export function forwardLogits(model: LlamaModel, kv: KvCache, step: StepArrays): Float32Array {
  const int = (a: number[], shape = [a.length]) =>
    Tensor.fromArray(Int32Array.from(a), shape, { dtype: 'int32', device: model.device });
  const width = Math.max(...step.blockTables.map((r) => r.length));
  const padded = step.blockTables.flatMap((r) => [...r, ...new Array<number>(width - r.length).fill(0)]);
  const t = {
    tokenIds: int(step.tokenIds),
    positions: int(step.positions),
    slotMapping: int(step.slotMapping),
    logitsIndices: int(step.logitsIndices),
    queryStartLoc: int(step.queryStartLoc),
    seqLens: int(step.seqLens),
    blockTables: int(padded, [step.blockTables.length, width]),
  };
  try {
    const { queryStartLoc, seqLens, blockTables, ...rest } = t;
    const scale = attentionScale(model.config);
    return model
      .forward({ ...rest, attention: { queryStartLoc, seqLens, blockTables, scale } }, kv)
      .toArray() as Float32Array;
  } finally {
    Object.values(t).forEach((x) => x.dispose());
  }
}

/**
 * Runs an op whose int32 index argument holds one bad index (10 or -1, outside a 10-row table): a RangeError, on the
 * CPU from the call, before anything is written (matching `cpu(bad)`), on CUDA at the next synchronize.
 */
export function expectBadIndex(
  device: Device,
  op: (ids: Tensor) => void,
  cpu: (bad: number) => RegExp,
  cuda: RegExp,
): void {
  for (const bad of [10, -1]) {
    using ids = Tensor.fromArray([3, bad], [2], { dtype: 'int32', device });
    expectThrow(
      () => {
        op(ids);
        synchronize(device);
      },
      RangeError,
      device === 'cpu' ? cpu(bad) : cuda,
    );
  }
}

/**
 * One varlen step over several sequences from scratch (prefill): the logits of each one's last token, or with `every`
 * of every token.
 */
export function prefillLogits(
  m: { model: LlamaModel; config: LlamaConfig },
  seqs: number[][],
  every = false,
): Float32Array[] {
  const bs = 16;
  const blocksPer = Math.max(...seqs.map((s) => Math.ceil(s.length / bs)));
  const kv = allocateKvCache(m.model, blocksPer * seqs.length, bs);
  const qsl = [0];
  for (const s of seqs) qsl.push(qsl.at(-1)! + s.length);
  try {
    const logits = forwardLogits(m.model, kv, {
      tokenIds: seqs.flat(),
      positions: seqs.flatMap((s) => s.map((_, i) => i)),
      slotMapping: seqs.flatMap((s, k) => s.map((_, i) => k * blocksPer * bs + i)),
      queryStartLoc: qsl,
      seqLens: seqs.map((s) => s.length),
      blockTables: seqs.map((_, k) => Array.from({ length: blocksPer }, (_, j) => k * blocksPer + j)),
      logitsIndices: every
        ? seqs.flatMap((_, k) => seqs[k]!.map((_, i) => qsl[k]! + i))
        : qsl.slice(1).map((q) => q - 1),
    });
    const V = m.config.vocabSize;
    return Array.from({ length: logits.length / V }, (_, i) => logits.slice(i * V, (i + 1) * V));
  } finally {
    disposeKvCache(kv);
  }
}
