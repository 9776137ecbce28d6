// linear against the float64 reference: odd sizes on both sides of the GEMV/GEMM switch, Llama layer shapes,
// every weight dtype under every activation dtype, bias, strided rows, the batched GEMV's bits, and bad arguments.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';

import { type Device, FLOAT_DTYPES, type FloatDType, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import {
  TOL,
  type Tolerance,
  childEnv,
  describeCuda,
  describeKernel,
  emulated,
  operands,
  skipBecause,
  expectThrow,
  expectClose,
  onEmulator,
  poisoned,
  prng,
  randn,
  uniform,
  describeEachCpuIsa,
} from '../helpers.js';

/** fp32 accumulation over k terms against a float64 sum: the error grows about like sqrt(k). */
function tolFor(dtype: FloatDType, k: number): Tolerance {
  return dtype === 'float32' ? { atol: 2e-7 * Math.sqrt(k) + 1e-6, rtol: 1e-5 } : TOL[dtype];
}

interface Case {
  tokens: number;
  inF: number;
  outF: number;
  dtype: FloatDType;
  wdtype?: FloatDType;
  bias?: boolean;
  /** compare only these token rows (the reference is slow at Llama sizes): every element of each */
  rows?: number[];
}

function runCase(c: Case, device: Device, seed: number): void {
  const { tokens, inF, outF, dtype } = c;
  const wdtype = c.wdtype ?? dtype;
  const rand = prng(seed);
  const x = Tensor.fromArray(uniform(rand, tokens * inF, 1), [tokens, inF], { dtype, device });
  // weights of variance 1/inF keep outputs O(1), as trained layers do (uniform: drawing 45M normals takes seconds)
  const w = Tensor.fromArray(uniform(rand, outF * inF, Math.sqrt(3 / inF)), [outF, inF], { dtype: wdtype, device });
  const b = c.bias ? Tensor.fromArray(uniform(rand, outF, 1), [outF], { dtype, device }) : null;
  const out = poisoned([tokens, outF], dtype, device);
  ops.linear(out, x, w, b);
  const got = out.toArray();
  const xs = x.toArray();
  const ws = w.toArray();
  const bs = b ? b.toArray() : null;
  const rows = c.rows ?? Array.from({ length: tokens }, (_, i) => i);
  for (const m of rows) {
    const expected = ref.linear(xs.subarray(m * inF, (m + 1) * inF), ws, bs, 1, outF, inF, dtype);
    expectClose(got.subarray(m * outF, (m + 1) * outF), expected, tolFor(dtype, inF), `out row ${m}`);
  }
  [x, w, out, b].forEach((t) => t?.dispose());
}

/** A seeded random quarter (rounded up) of `tokens` rows, the first and the last among them, in order. */
function sampleRows(seed: number, tokens: number): number[] {
  const rand = prng(seed);
  const picked = new Set([0, tokens - 1]);
  while (picked.size < Math.ceil(tokens / 4)) picked.add(Math.floor(rand() * tokens));
  return [...picked].sort((a, b) => a - b);
}

const ODD: [number, number, number][] = [
  [7, 769, 5125], // the issue's odd shape
  [1, 5, 3],
  [1, 1000, 33],
  [3, 64, 17],
  [4, 333, 129], // the CPU's last GEMV size
  [5, 333, 129], // the CPU's first panel-batch size
  [16, 333, 129], // CUDA's last GEMV size
  [17, 333, 129], // CUDA's first GEMM size
  [13, 257, 95],
  [16, 1024, 160],
  [37, 513, 200], // the CPU's panel batch in passes of 16 (AVX-512) or 6 tokens, the last one short
  [64, 200, 40], // the CPU's last panel-batch size
  [65, 200, 40], // the CPU's first GEMM size
  [128, 96, 300],
  [300, 700, 77],
];

describeKernel('linear', (device) => {
  let seed = 1;
  for (const dtype of FLOAT_DTYPES)
    for (const [tokens, inF, outF] of ODD)
      it(`${dtype} ${tokens} x ${inF} -> ${outF}`, () => runCase({ tokens, inF, outF, dtype }, device, seed++));

  // The emulated device keeps inFeatures (the long dot products) and an 11008-like ragged last tile, with an eighth of
  // the outputs: 4096 -> 512 and 11008 -> 1376. Every element of a seeded quarter of the rows (the first and the last
  // among them): the float64 reference of a whole 130 x 11008 x 4096 product takes ten seconds.
  const outScale = onEmulator(device) ? 8 : 1;
  for (const dtype of FLOAT_DTYPES)
    for (const [fullOut, inF] of [
      [4096, 4096],
      [11008, 4096],
      [4096, 11008],
    ] as const)
      for (const tokens of [1, 16, 130]) {
        const outF = fullOut / outScale;
        const rows = tokens === 1 ? undefined : sampleRows(seed * 7919, tokens);
        const title = `Llama shape ${dtype} ${tokens} x ${inF} -> ${outF} (rows checked: ${
          rows ? `${rows.length} of ${tokens}, a seeded sample with the first and last` : 'all'
        }${outScale > 1 ? `; emulated: outFeatures ${fullOut} / ${outScale}` : ''})`;
        it(title, () => runCase({ tokens, inF, outF, dtype, rows }, device, seed++));
      }

  for (const dtype of FLOAT_DTYPES)
    for (const wdtype of FLOAT_DTYPES)
      for (const tokens of [2, 40])
        it(`${dtype} activations with ${wdtype} weights, bias, ${tokens} tokens`, () =>
          runCase({ tokens, inF: 300, outF: 130, dtype, wdtype, bias: true }, device, seed++));

  it('strided x and out rows (views into wider buffers)', () => {
    for (const tokens of [3, 50]) {
      const rand = prng(77 + tokens);
      const xWide = Tensor.fromArray(uniform(rand, tokens * 200, 1), [tokens, 200], { device });
      const x = xWide.narrow(1, 10, 150);
      const w = Tensor.fromArray(randn(rand, 60 * 150, 0.1), [60, 150], { device });
      const outWide = Tensor.full([tokens, 100], 5, { device });
      const out = outWide.narrow(1, 20, 60);
      ops.linear(out, x, w);
      const xs = x.clone().toArray();
      const expected = ref.linear(xs, w.toArray(), null, tokens, 60, 150, 'float32');
      const wide = outWide.toArray();
      const got = new Float32Array(tokens * 60);
      for (let m = 0; m < tokens; ++m) {
        for (let n = 0; n < 100; ++n) if (n < 20 || n >= 80) expect(wide[m * 100 + n], 'untouched column').to.equal(5);
        got.set(wide.subarray(m * 100 + 20, m * 100 + 80), m * 60);
      }
      expectClose(got, expected, tolFor('float32', 150), 'out');
    }
  });

  it('inFeatures = 0 gives the bias', () => {
    const x = Tensor.zeros([2, 0], { device });
    const w = Tensor.zeros([3, 0], { device });
    const b = Tensor.fromArray([1, 2, 3], [3], { device });
    const out = poisoned([2, 3], 'float32', device);
    ops.linear(out, x, w, b);
    expect(Array.from(out.toArray())).to.deep.equal([1, 2, 3, 1, 2, 3]);
  });

  it('bad arguments throw naming the argument', () => {
    const x = Tensor.zeros([4, 8], { device });
    const w = Tensor.zeros([6, 8], { device });
    const out = Tensor.zeros([4, 6], { device });
    expect(() => ops.linear(out, x, Tensor.zeros([6, 9], { device }))).to.throw(
      RangeError,
      /linear: weight .*inFeatures of x/,
    );
    expect(() => ops.linear(Tensor.zeros([4, 5], { device }), x, w)).to.throw(
      RangeError,
      /linear: out .*outFeatures of weight/,
    );
    expect(() => ops.linear(Tensor.zeros([3, 6], { device }), x, w)).to.throw(
      RangeError,
      /linear: out .*numTokens of x/,
    );
    expect(() => ops.linear(Tensor.zeros([4, 6], { dtype: 'float16', device }), x, w)).to.throw(
      TypeError,
      /linear: out dtype float16 does not match x/,
    );
    expect(() => ops.linear(out, x, w, Tensor.zeros([5], { device }))).to.throw(
      RangeError,
      /linear: bias .*outFeatures/,
    );
    expect(() => ops.linear(out, x, w, Tensor.zeros([6], { dtype: 'bfloat16', device }))).to.throw(
      TypeError,
      /linear: bias dtype bfloat16 does not match out/,
    );
    expect(() => ops.linear(out, x, Tensor.zeros([8, 6], { device }).view([6, 8]).narrow(1, 0, 8))).to.not.throw();
    expect(() => ops.linear(out, x, Tensor.zeros([6, 16], { device }).narrow(1, 0, 8))).to.throw(
      RangeError,
      /linear: weight must be contiguous/,
    );
    expect(() => ops.linear(out, x, Tensor.zeros([6, 8], { dtype: 'int32', device }))).to.throw(
      TypeError,
      /linear: weight must have a float dtype/,
    );
    expect(() => ops.linear(x, x, Tensor.zeros([8, 8], { device }))).to.throw(
      RangeError,
      /linear: out and x must not overlap in memory/,
    );
    const buf = Tensor.zeros([4, 8], { device });
    expect(() => ops.linear(buf.narrow(0, 1, 3), buf.narrow(0, 0, 3), Tensor.zeros([8, 8], { device }))).to.throw(
      RangeError,
      /linear: out and x must not overlap in memory/,
    );
    expect(() => ops.linear(out, x, 'w' as never)).to.throw(TypeError, /linear: weight must be a Tensor, got/);
  });
});

// The CPU's packed weight: packLinearWeight's layout against the reference (every element written, the padding
// zero), and linearPacked against the reference and against linear() on the same weight, at token counts around the
// panel batch's switches, odd widths (outFeatures not a multiple of 16) and every dtype pairing.
describeEachCpuIsa('linear: packLinearWeight and linearPacked (CPU)', () => {
  const device = 'cpu';
  for (const wdtype of FLOAT_DTYPES)
    it(`packLinearWeight ${wdtype}: 37 x 23 and 64 x 8, every element (padding zero)`, () => {
      for (const [outF, inF] of [
        [37, 23],
        [64, 8],
      ] as const) {
        const w = Tensor.fromArray(randn(prng(outF), outF * inF, 1), [outF, inF], { dtype: wdtype, device });
        const packed = poisoned([Math.ceil(outF / 16), inF, 16], wdtype, device);
        ops.packLinearWeight(packed, w);
        expect([...packed.toArray()]).to.deep.equal([...ref.packLinearWeight(w.toArray(), outF, inF)]);
        [w, packed].forEach((t) => t.dispose());
      }
    });

  let seed = 900;
  for (const [dtype, wdtype] of [
    ['float32', 'float32'],
    ['float32', 'bfloat16'],
    ['bfloat16', 'bfloat16'],
    ['float16', 'float32'],
  ] as const)
    for (const [tokens, inF, outF, bias] of [
      [1, 300, 37, false],
      [4, 64, 16, true],
      [5, 333, 129, false],
      [16, 1030, 200, true],
      [17, 2048, 35, false], // rows of x 8 KiB apart (they share an L1 set) and two passes on AVX-512
      [37, 130, 50, true],
      [64, 96, 48, false],
      [65, 257, 33, true],
      [130, 700, 77, false],
    ] as const)
      it(`linearPacked ${dtype}/w ${wdtype} ${tokens} x ${inF} -> ${outF}${bias ? ', bias' : ''}`, () => {
        const rand = prng(++seed);
        const x = Tensor.fromArray(uniform(rand, tokens * inF, 1), [tokens, inF], { dtype, device });
        const w = Tensor.fromArray(randn(rand, outF * inF, 1 / Math.sqrt(inF)), [outF, inF], { dtype: wdtype, device });
        const b = bias ? Tensor.fromArray(uniform(rand, outF, 1), [outF], { dtype, device }) : null;
        const packed = Tensor.empty([Math.ceil(outF / 16), inF, 16], { dtype: wdtype, device });
        ops.packLinearWeight(packed, w);
        const out = poisoned([tokens, outF], dtype, device);
        ops.linearPacked(out, x, packed, b);
        const want = ref.linearPacked(x.toArray(), packed.toArray(), b?.toArray() ?? null, tokens, outF, inF, dtype);
        expectClose(out.toArray(), want, tolFor(dtype, inF), 'out');
        const plain = poisoned([tokens, outF], dtype, device);
        ops.linear(plain, x, w, b);
        expectClose(out.toArray(), plain.toArray(), tolFor(dtype, inF), 'out against linear()');
        [x, w, b, packed, out, plain].forEach((t) => t?.dispose());
      });

  it('rejects bad packed weights with errors that name them', () => {
    const x = Tensor.zeros([3, 8], { device });
    const out = Tensor.zeros([3, 20], { device });
    expectThrow(() => ops.linearPacked(out, x, Tensor.zeros([1, 8, 16], { device })), RangeError, /numPanels/);
    expectThrow(() => ops.linearPacked(out, x, Tensor.zeros([2, 9, 16], { device })), RangeError, /inFeatures of x/);
    expectThrow(() => ops.linearPacked(out, x, Tensor.zeros([2, 8, 8], { device })), RangeError, /16 features/);
    expectThrow(() => ops.linearPacked(out, x, Tensor.zeros([2, 8], { device })), RangeError, /packed/);
    const w = Tensor.zeros([20, 8], { device });
    expectThrow(() => ops.packLinearWeight(Tensor.zeros([1, 8, 16], { device }), w), RangeError, /numPanels/);
    expectThrow(
      () => ops.packLinearWeight(Tensor.zeros([2, 8, 16], { dtype: 'bfloat16', device }), w),
      TypeError,
      /packLinearWeight: packed dtype bfloat16 does not match weight/,
    );
    [x, out, w].forEach((t) => t.dispose());
  });
});

// The batched GEMV (2-16 tokens): x staged in shared memory in chunks, two weight rows per warp. Every batch size, an
// output count that leaves the last warp one row, inFeatures across several chunks with a ragged last one; each
// token's row has the bits the one-token GEMV gives it alone (the same columns in the same order per lane).
describeCuda('linear: the batched GEMV on CUDA', () => {
  for (const dtype of FLOAT_DTYPES)
    it(`${dtype}: 2..16 tokens x 2056 -> 33, each row bit-equal to the token alone, and to the reference`, () => {
      const rand = prng(77);
      const inF = 2056,
        outF = 33,
        device = 'cuda' as const;
      const x = Tensor.fromArray(uniform(rand, 16 * inF, 1), [16, inF], { dtype, device });
      const w = Tensor.fromArray(randn(rand, outF * inF, 1 / Math.sqrt(inF)), [outF, inF], { dtype, device });
      const alone = poisoned([16, outF], dtype, device);
      for (let m = 0; m < 16; ++m) ops.linear(alone.narrow(0, m, 1), x.narrow(0, m, 1), w);
      const want = alone.toArray();
      const xs = x.toArray(),
        ws = w.toArray();
      for (let tokens = 2; tokens <= 16; ++tokens) {
        const out = poisoned([tokens, outF], dtype, device);
        ops.linear(out, x.narrow(0, 0, tokens), w);
        const got = out.toArray();
        expect([...got], `${tokens} tokens`).to.deep.equal([...want.subarray(0, tokens * outF)]);
        const last = tokens - 1;
        const expected = ref.linear(xs.subarray(last * inF, tokens * inF), ws, null, 1, outF, inF, dtype);
        expectClose(got.subarray(last * outF), expected, tolFor(dtype, inF), `${tokens} tokens, last row`);
        out.dispose();
      }
      [x, w, alone].forEach((t) => t.dispose());
    });
});

/**
 * Runs a 16-bit linear on the emulated device in a child process under `env` (what the device is told it is) and
 * returns its output; the operands are seeded random draws (x uniform in [-1, 1), w ~ N(0, 1/inF), bias uniform),
 * made again here for the reference.
 */
function linearInChild(
  env: Record<string, string>,
  dtype: 'float16' | 'bfloat16',
  [tokens, inF, outF]: [number, number, number],
  seed: number,
): Float32Array {
  const lib = new URL('../../lib/index.js', import.meta.url).href;
  const helpers = new URL('../helpers.js', import.meta.url).href;
  const script = `
    import { Tensor, ops, backends } from ${JSON.stringify(lib)};
    import { operands } from ${JSON.stringify(helpers)};
    const [dtype, tokens, inF, outF, seed] = ${JSON.stringify([dtype, tokens, inF, outF, seed])};
    const { x, w, bias } = operands(seed, tokens, inF, outF);
    const device = 'cuda';
    const out = Tensor.empty([tokens, outF], { dtype, device });
    const t = (a, shape) => Tensor.fromArray(a, shape, { dtype, device });
    ops.linear(out, t(x, [tokens, inF]), t(w, [outF, inF]), t(bias, [outF]));
    const cc = backends().cuda.devices[0].computeCapability;
    process.stdout.write(JSON.stringify({ cc, out: [...out.toArray()] }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...childEnv(), ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  expect(r.status, r.stderr).to.equal(0);
  const { cc, out } = JSON.parse(r.stdout) as { cc: string; out: number[] };
  if (env['MINI_VLLM_EMU_ARCH']) expect(cc).to.equal(`${env['MINI_VLLM_EMU_ARCH'][0]}.${env['MINI_VLLM_EMU_ARCH'][1]}`);
  return Float32Array.from(out);
}

/** linearInChild's output against the float64 reference of the same operands, every element, within TOL. */
function expectChildLinear(got: Float32Array, dtype: FloatDType, shape: [number, number, number], seed: number): void {
  const [tokens, inF, outF] = shape;
  const { x, w, bias } = operands(seed, tokens, inF, outF);
  const round = (a: Float32Array) => ref.roundArray(a, dtype);
  const want = ref.linear(round(x), round(w), round(bias), tokens, outF, inF, dtype);
  expectClose(got, want, tolFor(dtype, inF), 'out');
}

// A build whose kernels are for sm_75 has no mma.sync m16n8k16: the half-precision GEMM must take the CUDA-core path
// there, not run a tensor-core kernel whose instruction compiled to nothing. Only the emulated device can be told what
// it was built for (MINI_VLLM_EMU_ARCH), so this runs in a child process under emulation, and is skipped elsewhere.
describe('linear on a device built for sm_75 (emulated)', () => {
  for (const dtype of ['float16', 'bfloat16'] as const)
    it(`${dtype} GEMM at tensor-core shapes (40 x 64 -> 48, bias): every element against the reference`, function () {
      this.timeout(120_000);
      if (!emulated) return skipBecause(this, 'a real device is the architecture it is; only emulation can pretend');
      const shape: [number, number, number] = [40, 64, 48];
      expectChildLinear(linearInChild({ MINI_VLLM_EMU_ARCH: '75' }, dtype, shape, 75), dtype, shape, 75);
    });
});

// The tensor-core GEMM splits k when its tiles leave SMs idle. The emulated device can be told its SM count
// (MINI_VLLM_EMU_SMS): with 1 SM nothing splits, so the same product runs all 64 k tiles through the cp.async pipeline
// of one block, and with the default 132 it runs as 8 splits and the reduce. Both must match the reference.
describe('linear: the tensor-core GEMM with and without split-K (emulated)', () => {
  for (const sms of ['1', '132'])
    it(`bfloat16 130 x 2048 -> 160 with bias on ${sms} SM(s): every element against the reference`, function () {
      this.timeout(300_000);
      if (!emulated) return skipBecause(this, 'a real device has the SMs it has; only emulation can pretend');
      const shape: [number, number, number] = [130, 2048, 160];
      expectChildLinear(linearInChild({ MINI_VLLM_EMU_SMS: sms }, 'bfloat16', shape, 2048), 'bfloat16', shape, 2048);
    });
});
