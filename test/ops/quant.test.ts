// The quantised ops (quantLinear, quantEmbedding) against dequantise-then-float on random blocks of every type, GEMV
// and GEMM sizes, every activation dtype; and the reference dequantiser against hand-made blocks whose values follow
// from ggml's block layouts by hand.
import { expect } from 'chai';

import { FLOAT_DTYPES, type FloatDType, Tensor, ops } from '../../lib/index.js';
import { dequantizeBlock, QUANT_FORMATS, QUANT_TYPES, type QuantType } from '../../lib/quant/formats.js';
import { halfBits, quantizeRows } from '../../lib/quant/quantize.js';
import { QuantizedTensor } from '../../lib/quant/tensor.js';
import * as ref from '../../lib/reference/index.js';
import {
  UNIT_ROUNDOFF,
  describeEachCpuIsa,
  describeKernel,
  expectBadIndex,
  expectClose,
  expectWithin,
  halfUlp,
  poisoned,
  prng,
  randn,
  upload,
} from '../helpers.js';

const h16 = (x: number) => [halfBits(x) & 0xff, halfBits(x) >> 8];

describe('quantised block formats (reference dequantiser, by hand)', () => {
  const deq = (type: QuantType, bytes: number[]) => {
    const y = new Float32Array(QUANT_FORMATS[type].block);
    dequantizeBlock(type, Uint8Array.from(bytes), 0, y);
    return y;
  };
  it('Q8_0: d times int8', () => {
    const y = deq('Q8_0', [...h16(0.5), ...Array.from({ length: 32 }, (_, i) => (i - 16) & 0xff)]);
    expect(y[0]).to.equal(-8);
    expect(y[31]).to.equal(7.5);
  });
  it('Q4_0 / Q4_1: low nibbles are values 0..15, high nibbles 16..31; Q4_0 subtracts 8, Q4_1 adds m', () => {
    const qs = Array.from({ length: 16 }, (_, i) => i | ((15 - i) << 4));
    const a = deq('Q4_0', [...h16(2), ...qs]);
    expect([a[0], a[5], a[16], a[31]]).to.deep.equal([-16, -6, 14, -16]);
    const b = deq('Q4_1', [...h16(2), ...h16(-1), ...qs]);
    expect([b[0], b[5], b[16], b[31]]).to.deep.equal([-1, 9, 29, -1]);
  });
  it('Q5_0 / Q5_1: the fifth bit of value j is bit j of qh (little-endian u32)', () => {
    const qh = [0b00000010, 0, 0b00000001, 0b10000000]; // values 1, 16 and 31
    const qs = Array.from({ length: 16 }, () => 0x00);
    const a = deq('Q5_0', [...h16(1), ...qh, ...qs]);
    expect([a[0], a[1], a[16], a[31], a[30]]).to.deep.equal([-16, 0, 0, 0, -16]);
    const b = deq('Q5_1', [...h16(1), ...h16(0.5), ...qh, ...qs]);
    expect([b[0], b[1], b[16], b[31]]).to.deep.equal([0.5, 16.5, 16.5, 16.5]);
  });
  it('Q4_K / Q5_K: 6-bit scales and mins (sub-blocks 4..7 split over two bytes), d and dmin', () => {
    // sub-block 0: scale 3, min 1; sub-block 5: scale 17 (0b010001), min 33 (0b100001)
    const sc = new Array<number>(12).fill(0);
    sc[0] = 3;
    sc[4] = 1;
    sc[9] = (17 & 0xf) | ((33 & 0xf) << 4);
    sc[1] = (17 >> 4) << 6;
    sc[5] = (33 >> 4) << 6;
    const qs = new Array<number>(128).fill(0);
    qs[0] = 0x05; // value 0 (sub-block 0, low nibble) = 5
    qs[64 + 2] = 0x90; // sub-block 5 = high nibbles of bytes 64..95: value 160 + 2 = 9
    const a = deq('Q4_K', [...h16(0.5), ...h16(0.25), ...sc, ...qs]);
    expect(a[0]).to.equal(0.5 * 3 * 5 - 0.25 * 1);
    expect(a[1]).to.equal(-0.25);
    expect(a[162]).to.equal(0.5 * 17 * 9 - 0.25 * 33);
    const qh = new Array<number>(32).fill(0);
    qh[2] = 1 << 5; // the fifth bit of value 2 of sub-block 5
    const b = deq('Q5_K', [...h16(0.5), ...h16(0.25), ...sc, ...qh, ...qs]);
    expect(b[162]).to.equal(0.5 * 17 * (9 + 16) - 0.25 * 33);
    expect(b[0]).to.equal(0.5 * 3 * 5 - 0.25);
  });
  it('Q6_K: 4 low bits from ql, 2 high from qh, minus 32, an int8 scale per 16 values, d last', () => {
    const ql = new Array<number>(128).fill(0);
    const qh = new Array<number>(64).fill(0);
    const scales = Array.from({ length: 16 }, (_, i) => (i % 2 ? -2 : 3) & 0xff);
    ql[0] = 0x0f | (0x01 << 4); // value 0 low 15; value 64 low 1
    qh[0] = 0b00_10_00_11; // value 0 high 3; value 32 high 0; value 64 high 2; value 96 high 0
    ql[64 + 32 + 17] = 0x70; // second half, value 128 + 96 + 17: low 7
    const y = deq('Q6_K', [...ql, ...qh, ...scales, ...h16(0.5)]);
    expect(y[0]).to.equal(0.5 * 3 * (15 + 48 - 32));
    expect(y[32]).to.equal(0.5 * 3 * -32); // scale index 2
    expect(y[64]).to.equal(0.5 * 3 * (1 + 32 - 32)); // scale index 4
    expect(y[128 + 96 + 17]).to.equal(0.5 * -2 * (7 - 32)); // scale 8 + 6 + 1 = 15: odd, -2
  });
  it('quantisers round-trip within each type’s error bound', () => {
    const rand = prng(3);
    const x = randn(rand, 4 * 512);
    const bound: Record<QuantType, number> = {
      Q8_0: 0.006,
      Q4_0: 0.1,
      Q4_1: 0.09,
      Q5_0: 0.05,
      Q5_1: 0.045,
      Q4_K: 0.1,
      Q5_K: 0.05,
      Q6_K: 0.025,
    };
    for (const t of QUANT_TYPES) {
      const q = quantizeRows(t, x, 4, 512);
      const y = new Float32Array(x.length);
      const f = QUANT_FORMATS[t];
      for (let i = 0; i < x.length / f.block; ++i) dequantizeBlock(t, q, i * f.bytes, y, i * f.block);
      let e = 0;
      let s = 0;
      for (let i = 0; i < x.length; ++i) {
        e += (y[i]! - x[i]!) ** 2;
        s += x[i]! ** 2;
      }
      expect(Math.sqrt(e / s), t).to.be.below(bound[t]);
    }
  });
  it('Q8_0 and Q4_0 quantise with ggml’s reference rounding', () => {
    const x = Float32Array.from({ length: 32 }, (_, i) => (i - 10) / 4);
    const q8 = quantizeRows('Q8_0', x, 1, 32);
    expect([...q8.subarray(0, 2)]).to.deep.equal(h16(5.25 / 127)); // d = amax / 127
    expect((q8[2]! << 24) >> 24).to.equal(Math.round((-2.5 * 127) / 5.25)); // roundf(-60.47) = -60
    const q4 = quantizeRows('Q4_0', x, 1, 32);
    expect([...q4.subarray(0, 2)]).to.deep.equal(h16(5.25 / -8)); // d = signed max / -8
    expect(q4[2]! & 0xf).to.equal(Math.min(15, Math.trunc(-2.5 / (5.25 / -8) + 8.5))); // 12
  });
});

const CASES: [QuantType, number, number][] = QUANT_TYPES.map((t) => [t, QUANT_FORMATS[t].block === 256 ? 512 : 96, 37]);

/** fp32 arithmetic after the products, as a multiple of u·Σ|w·x| (see quantLinearBound). */
const FP32_SLACK = { gemv: 2, float: 4 };

/**
 * What quantLinear must give for out[m, n], exactly, from the operands as the kernel's path sees them, and how far the
 * kernel may be from it:
 * - CPU, up to 16 tokens (the integer GEMV, csrc/cpu/quant_dots.h): x is rounded to 8 bits per 32 values
 *   (ref.roundActivationsQ8 reproduces the kernel's rounding, block by block); a block's 32 byte products are exact
 *   integers. What remains is fp32 arithmetic on per-block sums (the scale product, the accumulation in 8 lanes, the
 *   offsets of the -8 / min terms, the bias): at most FP32_SLACK.gemv · u · Σ|w·x̃| (u = 2^-24).
 * - CUDA above 16 tokens in a 16-bit dtype: the tensor-core GEMM stages the dequantised weight in x's dtype (as vLLM's
 *   dequantising GEMMs), so w is rounded to that dtype; products exact in fp32, fp32 sums.
 * - Otherwise (CPU GEMM, CUDA GEMV, float32 GEMM): fp32 x and the dequantised weight, fp32 sums.
 * Then one rounding of the fp32 result to out's dtype: half an ulp there.
 * Before: a worst-case half step of x's rounding per value (amax / 254 · Σ|w|, 12-48% of the mean output) and
 * TOL × 8 / × 4 elsewhere.
 */
function quantLinearExpectation(
  device: 'cpu' | 'cuda',
  dtype: FloatDType,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array,
  tokens: number,
  N: number,
  K: number,
): { exact: Float64Array; bound: Float64Array } {
  const integerGemv = device === 'cpu' && tokens <= 16;
  const staged = device === 'cuda' && tokens > 16 && dtype !== 'float32';
  const wk = staged ? ref.roundArray(w, dtype) : w;
  const exact = new Float64Array(tokens * N);
  const bound = new Float64Array(tokens * N);
  const slack = integerGemv ? FP32_SLACK.gemv : FP32_SLACK.float;
  for (let m = 0; m < tokens; ++m) {
    const row = x.subarray(m * K, (m + 1) * K);
    const xk = integerGemv ? ref.roundActivationsQ8(row) : row;
    for (let n = 0; n < N; ++n) {
      let sum = bias[n]!;
      let mag = Math.abs(bias[n]!);
      for (let k = 0; k < K; ++k) {
        const p = wk[n * K + k]! * xk[k]!;
        sum += p;
        mag += Math.abs(p);
      }
      const fp32 = slack * UNIT_ROUNDOFF.float32 * mag;
      exact[m * N + n] = sum;
      bound[m * N + n] = fp32 + halfUlp(dtype, Math.abs(sum) + fp32);
    }
  }
  return { exact, bound };
}

/**
 * Runs `run(out, x, bias)` for every dtype on random x (rows strided: a view of a wider tensor) and bias, and holds
 * out to quantLinearExpectation of the dequantised weight wf [N, K].
 */
function expectQuantLinear(
  device: 'cpu' | 'cuda',
  rand: () => number,
  wf: Float32Array,
  tokens: number,
  N: number,
  K: number,
  run: (out: Tensor, x: Tensor, bias: Tensor) => void,
): void {
  for (const dtype of FLOAT_DTYPES) {
    const [wide, xs] = upload(randn(rand, tokens * (K + 8)), [tokens, K + 8], dtype, device);
    const x = wide.narrow(1, 0, K);
    const xd = new Float32Array(tokens * K);
    for (let m = 0; m < tokens; ++m) xd.set(xs.subarray(m * (K + 8), m * (K + 8) + K), m * K);
    const [bias, bs] = upload(randn(rand, N), [N], dtype, device);
    const out = poisoned([tokens, N], dtype, device);
    run(out, x, bias);
    const { exact, bound } = quantLinearExpectation(device, dtype, xd, wf, bs, tokens, N, K);
    expectWithin(out.toArray(), exact, bound, `${dtype} out`);
  }
}

describeKernel('quantLinear', (device) => {
  for (const [type, K, N] of CASES)
    for (const tokens of [1, 5, 40])
      it(`${type}: ${tokens} x ${K} -> ${N}, every dtype, against dequantise-then-float`, () => {
        const rand = prng(11 + tokens);
        const w = QuantizedTensor.empty(type, N, K, device);
        w.writeRows(0, N, quantizeRows(type, randn(rand, N * K), N, K));
        const wf = ref.dequantizeWords(w.data.toArray() as Int32Array, N, K, QUANT_FORMATS[type].id);
        expectQuantLinear(device, rand, wf, tokens, N, K, (out, x, bias) =>
          ops.quantLinear(out, x, w.data, QUANT_FORMATS[type].id, bias),
        );
      });

  it('bad arguments throw naming them', () => {
    const x = Tensor.zeros([2, 64], { device });
    const out = Tensor.zeros([2, 4], { device });
    const w = Tensor.zeros([4, 17], { dtype: 'int32', device }); // Q8_0: 2 blocks of 34 bytes = 17 words
    expect(() => ops.quantLinear(out, x, w, 9)).to.throw(RangeError, /quantLinear: type must be a ggml quantised type/);
    expect(() => ops.quantLinear(out, x, w, 2)).to.throw(
      RangeError,
      /quantLinear: weight .*has dim 1 = 17, expected 9/,
    );
    expect(() => ops.quantLinear(out, Tensor.zeros([2, 48], { device }), w, 8)).to.throw(
      RangeError,
      /inFeatures = 48 is not a multiple of Q8_0's block of 32/,
    );
    expect(() => ops.quantLinear(out, x, Tensor.zeros([4, 17], { device }), 8)).to.throw(
      TypeError,
      /quantLinear: weight must have dtype int32/,
    );
  });
});

// The CPU's interleaved Q4_0: packQuantWeight bit for bit against the reference layout, and quantLinearPacked
// against the same expectation as quantLinear (the integer GEMV up to 16 tokens, the dequantising GEMM above), at
// row counts of 8 and more groups and odd block counts (padded rows).
describeEachCpuIsa(
  'packQuantWeight, quantLinearPacked, quantEmbeddingPacked: Q4_0, Q8_0, Q4_K, Q6_K interleaved by 8 (CPU)',
  () => {
    const device = 'cpu';
    const packedOf = (type: 'Q4_0' | 'Q8_0' | 'Q4_K' | 'Q6_K', N: number, K: number, rand: () => number) => {
      const w = QuantizedTensor.empty(type, N, K, device);
      w.writeRows(0, N, quantizeRows(type, randn(rand, N * K), N, K));
      const words = w.data.toArray() as Int32Array;
      const packed = Tensor.zeros(w.data.shape, { dtype: 'int32', device });
      ops.packQuantWeight(packed, w.data, QUANT_FORMATS[type].id);
      return { words, packed };
    };
    for (const [type, K, N] of [
      ['Q4_0', 32, 8],
      ['Q4_0', 96, 40],
      ['Q4_0', 256, 64],
      ['Q8_0', 32, 8],
      ['Q8_0', 96, 64],
      ['Q4_K', 256, 64],
      ['Q4_K', 768, 24],
      ['Q6_K', 256, 64],
      ['Q6_K', 768, 24],
    ] as const)
      for (const tokens of [1, 3, 4, 7, 16, 40])
        it(`${type} ${tokens} x ${K} -> ${N}, every dtype`, () => {
          const rand = prng(31 + tokens + K);
          const id = QUANT_FORMATS[type].id;
          const { words, packed } = packedOf(type, N, K, rand);
          const got = packed.toArray() as Int32Array;
          if (tokens === 1) {
            // the layout, bit for bit, both ways
            expect(got).to.deep.equal(ref.packQuantWeight(words, N, id));
            expect(ref.unpackQuantWeight(got, N, id)).to.deep.equal(words);
          }
          const wf = ref.dequantizeWords(words, N, K, id);
          expectQuantLinear(device, rand, wf, tokens, N, K, (out, x, bias) =>
            ops.quantLinearPacked(out, x, packed, id, bias),
          );
        });

    for (const [type, hidden] of [
      ['Q4_0', 64],
      ['Q8_0', 64],
      ['Q4_K', 512],
      ['Q6_K', 512],
    ] as const)
      it(`quantEmbeddingPacked ${type}: the rows quantEmbedding gives, bit for bit, every dtype`, () => {
        const { words, packed } = packedOf(type, 16, hidden, prng(5));
        const id = QUANT_FORMATS[type].id;
        const ids = [3, 0, 15, 8, 3];
        for (const dtype of FLOAT_DTYPES) {
          const out = poisoned([5, hidden], dtype, device);
          ops.quantEmbeddingPacked(out, Tensor.fromArray(ids, [5], { dtype: 'int32', device }), packed, id);
          const want = ref.quantEmbedding(ids, words, id, 16, hidden, dtype);
          expectClose(out.toArray(), want, { atol: 0, rtol: 0 }, `${dtype} out`);
        }
        const out = Tensor.zeros([2, hidden], { device });
        const eight = packedOf(type, 8, hidden, prng(6)).packed; // expectBadIndex tries ids 10 and -1
        expectBadIndex(
          device,
          (bad) => ops.quantEmbeddingPacked(out, bad, eight, id),
          (bad) => new RegExp(`quantEmbeddingPacked: ids\\[1\\] = ${bad} is outside \\[0, 8\\)`),
          /outside/,
        );
      });

    it('bad arguments throw naming them', () => {
      const int32 = (shape: number[]) => Tensor.zeros(shape, { dtype: 'int32', device });
      const w = int32([8, 9]); // Q4_0: 2 blocks of 18 bytes = 9 words
      expect(() => ops.packQuantWeight(int32([8, 9]), w, 3)).to.throw(
        RangeError,
        /packQuantWeight: type must be a type the CPU interleaves \(Q4_0 2, Q8_0 8, Q4_K 12, Q6_K 14\), got 3/,
      );
      expect(() => ops.packQuantWeight(int32([12, 9]), int32([12, 9]), 2)).to.throw(
        RangeError,
        /packQuantWeight: weight has 12 rows, not a multiple of 8/,
      );
      expect(() => ops.packQuantWeight(int32([8, 9]), int32([8, 10]), 2)).to.throw(
        RangeError,
        /packQuantWeight: weight shape \[8, 10\] has dim 1 = 10, expected 9/,
      );
      expect(() => ops.packQuantWeight(int32([8, 8]), w, 2)).to.throw(RangeError, /packed .*has dim 1 = 8, expected 9/);
      expect(() => ops.packQuantWeight(w, w, 2)).to.throw(RangeError, /packQuantWeight: .*packed.*weight/);
      const x = Tensor.zeros([2, 64], { device });
      const out = Tensor.zeros([2, 8], { device });
      expect(() => ops.quantLinearPacked(out, x, w, 8)).to.throw(
        RangeError,
        /quantLinearPacked: .*expected 17|interleaves/,
      );
      expect(() => ops.quantLinearPacked(Tensor.zeros([2, 4], { device }), x, int32([4, 9]), 2)).to.throw(
        RangeError,
        /quantLinearPacked: packed has 4 rows, not a multiple of 8/,
      );
      expect(() => ops.quantLinearPacked(out, Tensor.zeros([2, 32], { device }), w, 2)).to.throw(
        RangeError,
        /quantLinearPacked: packed .*has dim 1 = 9, expected 5/,
      );
    });
  },
);

describeKernel('quantEmbedding', (device) => {
  for (const type of QUANT_TYPES)
    it(`${type}: rows of a quantised table, every dtype`, () => {
      const rand = prng(4);
      const hidden = QUANT_FORMATS[type].block === 256 ? 256 : 64;
      const table = QuantizedTensor.empty(type, 9, hidden, device);
      table.writeRows(0, 9, quantizeRows(type, randn(rand, 9 * hidden), 9, hidden));
      const ids = [3, 0, 8, 3];
      for (const dtype of FLOAT_DTYPES) {
        const out = poisoned([4, hidden], dtype, device);
        ops.quantEmbedding(
          out,
          Tensor.fromArray(ids, [4], { dtype: 'int32', device }),
          table.data,
          QUANT_FORMATS[type].id,
        );
        const want = ref.quantEmbedding(
          ids,
          table.data.toArray() as Int32Array,
          QUANT_FORMATS[type].id,
          9,
          hidden,
          dtype,
        );
        expectClose(out.toArray(), want, { atol: 0, rtol: 0 }, `${dtype} out`);
      }
    });

  it('an id outside the table is a RangeError naming it', () => {
    const table = QuantizedTensor.empty('Q8_0', 10, 32, device);
    table.writeRows(0, 10, quantizeRows('Q8_0', new Float32Array(320), 10, 32));
    const out = Tensor.zeros([2, 32], { device });
    expectBadIndex(
      device,
      (ids) => ops.quantEmbedding(out, ids, table.data, 8),
      (bad) => new RegExp(`quantEmbedding: ids\\[1\\] = ${bad} is outside \\[0, 10\\)`),
      /an id or index is outside the table/,
    );
  });
});
