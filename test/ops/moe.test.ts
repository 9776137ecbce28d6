// fusedMoe and quantFusedMoe against the float64 reference: every dtype; one token (each expert's GEMV), a decode
// batch, and enough tokens per expert for the GEMM; k from 1 to 8, renormalised or not; weights of another dtype;
// strided rows; equal router logits (the lower expert id wins); quantised experts of each type; bad arguments.
import { expect } from 'chai';
import { FLOAT_DTYPES, type FloatDType, Tensor, ops } from '../../lib/index.js';
import { QUANT_FORMATS, type QuantType } from '../../lib/quant/formats.js';
import { quantizeRows } from '../../lib/quant/quantize.js';
import { QuantizedTensor } from '../../lib/quant/tensor.js';
import * as ref from '../../lib/reference/index.js';
import { describeEachCpuIsa, describeKernel, expectClose, poisoned, prng, randn, upload } from '../helpers.js';

// three rounding steps of the dtype on each side (linear, siluAndMul, linear), summed in another order
const MOE_TOL: Record<FloatDType, { atol: number; rtol: number }> = {
  float32: { atol: 2e-5, rtol: 1e-4 },
  float16: { atol: 2e-3, rtol: 4e-3 },
  bfloat16: { atol: 1.5e-2, rtol: 3e-2 },
};

const CASES = [
  { tokens: 1, hidden: 64, inter: 32, experts: 8, k: 2, renormalize: true }, // Mixtral's routing
  { tokens: 6, hidden: 48, inter: 24, experts: 4, k: 1, renormalize: false }, // rows not whole chunks of 32
  { tokens: 9, hidden: 32, inter: 16, experts: 16, k: 8, renormalize: false }, // OLMoE's k of 8
  { tokens: 80, hidden: 32, inter: 48, experts: 2, k: 2, renormalize: true }, // 80 tokens per expert: the GEMM
];

interface Moe {
  x: Tensor;
  xs: Float32Array;
  router: Tensor;
  rs: Float32Array;
  w13: Tensor;
  w13s: Float32Array;
  w2: Tensor;
  w2s: Float32Array;
}

function make(
  c: (typeof CASES)[number],
  dtype: FloatDType,
  device: 'cpu' | 'cuda',
  seed: number,
  weightDtype = dtype,
): Moe {
  const rand = prng(seed);
  const [x, xs] = upload(randn(rand, c.tokens * c.hidden), [c.tokens, c.hidden], dtype, device);
  const [router, rs] = upload(randn(rand, c.tokens * c.experts, 2), [c.tokens, c.experts], dtype, device);
  const [w13, w13s] = upload(
    randn(rand, c.experts * 2 * c.inter * c.hidden, 1 / Math.sqrt(c.hidden)),
    [c.experts, 2 * c.inter, c.hidden],
    weightDtype,
    device,
  );
  const [w2, w2s] = upload(
    randn(rand, c.experts * c.hidden * c.inter, 1 / Math.sqrt(c.inter)),
    [c.experts, c.hidden, c.inter],
    weightDtype,
    device,
  );
  return { x, xs, router, rs, w13, w13s, w2, w2s };
}

const want = (
  m: Moe,
  c: (typeof CASES)[number],
  dtype: FloatDType,
  input?: (row: Float64Array, e: number) => ArrayLike<number>,
) =>
  ref.fusedMoe(
    m.xs,
    m.rs,
    m.w13s,
    m.w2s,
    { numTokens: c.tokens, hidden: c.hidden, intermediate: c.inter, numExperts: c.experts },
    c.k,
    c.renormalize,
    dtype,
    input,
  );

describeKernel('fusedMoe', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const c of CASES) {
      it(`${dtype} ${c.tokens} tokens, ${c.experts} experts top ${c.k}${c.renormalize ? ' renormalised' : ''}`, () => {
        const m = make(c, dtype, device, c.tokens * 31 + c.experts);
        const out = poisoned([c.tokens, c.hidden], dtype, device);
        ops.fusedMoe(out, m.x, m.router, m.w13, m.w2, c.k, c.renormalize);
        expectClose(out.toArray(), want(m, c, dtype), MOE_TOL[dtype], 'out');
        [out, m.x, m.router, m.w13, m.w2].forEach((t) => t.dispose());
      });
    }
  }
  it('float32 activations over bfloat16 experts, rows strided in wider buffers', () => {
    const c = CASES[0]!;
    const m = make({ ...c, tokens: 3 }, 'float32', device, 5, 'bfloat16');
    const wideX = Tensor.zeros([3, 100], { device });
    wideX.narrow(1, 10, 64).copyFrom(m.x);
    const wideOut = Tensor.full([3, 90], 7, { device });
    ops.fusedMoe(wideOut.narrow(1, 0, 64), wideX.narrow(1, 10, 64), m.router, m.w13, m.w2, c.k, c.renormalize);
    const got = wideOut.toArray();
    const w = want(m, { ...c, tokens: 3 }, 'float32');
    for (let t = 0; t < 3; ++t) {
      expectClose(got.subarray(t * 90, t * 90 + 64), w.subarray(t * 64, (t + 1) * 64), MOE_TOL.float32, `row ${t}`);
      expect(
        Array.from(got.subarray(t * 90 + 64, (t + 1) * 90)).every((v) => v === 7),
        `row ${t} tail`,
      ).to.equal(true);
    }
  });
  it('in place: out is x', () => {
    const c = CASES[2]!;
    const m = make(c, 'float32', device, 21);
    ops.fusedMoe(m.x, m.x, m.router, m.w13, m.w2, c.k, c.renormalize);
    expectClose(m.x.toArray(), want(m, c, 'float32'), MOE_TOL.float32, 'out');
  });
  it('equal router logits: the lower expert ids are picked, with equal weights', () => {
    const c = { tokens: 2, hidden: 32, inter: 16, experts: 6, k: 3, renormalize: true };
    const m = make(c, 'float32', device, 9);
    const router = Tensor.zeros([2, 6], { device });
    const out = poisoned([2, 32], 'float32', device);
    ops.fusedMoe(out, m.x, router, m.w13, m.w2, 3, true);
    const route = ref.moeRoute(new Float32Array(12), 2, 6, 3, true);
    expect(Array.from(route.experts)).to.deep.equal([0, 1, 2, 0, 1, 2]);
    expectClose(out.toArray(), want({ ...m, rs: new Float32Array(12) }, c, 'float32'), MOE_TOL.float32, 'out');
  });
  it('rejects a topK out of range, experts that disagree, and overlapping out and x', () => {
    const c = CASES[0]!;
    const m = make(c, 'float32', device, 1);
    const out = Tensor.zeros([1, 64], { device });
    expect(() => ops.fusedMoe(out, m.x, m.router, m.w13, m.w2, 9, true)).to.throw(
      RangeError,
      /fusedMoe: topK must be an integer in \[1, 8\], got 9/,
    );
    expect(() => ops.fusedMoe(out, m.x, m.router, m.w13, m.w2, 0, true)).to.throw(RangeError, /topK/);
    const w2 = Tensor.zeros([4, 64, 32], { device });
    expect(() => ops.fusedMoe(out, m.x, m.router, m.w13, w2, 2, true)).to.throw(RangeError, /fusedMoe: w2/);
    const shifted = Tensor.zeros([2, 64], { device });
    expect(() =>
      ops.fusedMoe(
        shifted.view([128]).narrow(0, 1, 64).view([1, 64]),
        shifted.narrow(0, 0, 1),
        m.router,
        m.w13,
        m.w2,
        2,
        true,
      ),
    ).to.throw(RangeError, /out and x must be the same view \(in place\) or not overlap/);
    const many = Tensor.zeros([1, 300], { device });
    expect(() => ops.fusedMoe(out, m.x, many, m.w13, m.w2, 2, true)).to.throw(RangeError, /numExperts/);
  });
});

describeKernel('quantFusedMoe', (device) => {
  // [gate/up type, down type]: one type, and Q4_K_M's mix (down experts in Q6_K)
  const TYPES: [QuantType, QuantType][] = [
    ['Q8_0', 'Q8_0'],
    ['Q4_0', 'Q4_0'],
    ['Q4_K', 'Q6_K'],
    ['Q6_K', 'Q6_K'],
  ];
  for (const [type, type2] of TYPES) {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      for (const tokens of [5, 40])
        it(`${type}${type2 === type ? '' : ` / ${type2}`} experts, ${dtype}: ${tokens} tokens, 4 experts top 2`, () => {
          const c = { tokens, hidden: 256, inter: 256, experts: 4, k: 2, renormalize: true };
          const rand = prng(QUANT_FORMATS[type].id * 7 + (dtype === 'float32' ? 0 : 1));
          const [x, xs] = upload(randn(rand, c.tokens * c.hidden), [c.tokens, c.hidden], dtype, device);
          const [router, rs] = upload(randn(rand, c.tokens * c.experts, 2), [c.tokens, c.experts], dtype, device);
          const rows13 = c.experts * 2 * c.inter,
            rows2 = c.experts * c.hidden;
          const w13 = QuantizedTensor.empty(type, rows13, c.hidden, device);
          w13.writeRows(0, rows13, quantizeRows(type, randn(rand, rows13 * c.hidden, 0.06), rows13, c.hidden));
          const w2 = QuantizedTensor.empty(type2, rows2, c.inter, device);
          w2.writeRows(0, rows2, quantizeRows(type2, randn(rand, rows2 * c.inter, 0.06), rows2, c.inter));
          const [id, id2] = [QUANT_FORMATS[type].id, QUANT_FORMATS[type2].id];
          const out = poisoned([c.tokens, c.hidden], dtype, device);
          ops.quantFusedMoe(out, x, router, w13.data, w2.data, id, id2, c.k, c.renormalize);
          // the CPU's quantLinear GEMV (an expert with up to 16 tokens) rounds its input to 8 bits a block of
          // 32; its GEMM (more) does not
          const route = ref.moeRoute(rs, c.tokens, c.experts, c.k, c.renormalize);
          const count = (e: number) => route.experts.filter((x) => x === e).length;
          const q8 =
            device === 'cpu'
              ? (row: Float64Array, e: number) =>
                  count(e) <= 16 ? ref.roundActivationsQ8(Float32Array.from(row)) : row
              : undefined;
          const expected = ref.quantFusedMoe(
            xs,
            rs,
            w13.data.toArray() as Int32Array,
            w2.data.toArray() as Int32Array,
            { numTokens: c.tokens, hidden: c.hidden, intermediate: c.inter, numExperts: c.experts },
            id,
            id2,
            c.k,
            c.renormalize,
            dtype,
            q8,
          );
          expectClose(out.toArray(), expected, MOE_TOL[dtype], 'out');
          [x, router, out].forEach((t) => t.dispose());
          w13.dispose();
          w2.dispose();
        });
    }
  }
  it('rejects expert rows that are not numExperts · 2 · intermediate, and a type that is not ggml’s', () => {
    const x = Tensor.zeros([1, 32], { device });
    const router = Tensor.zeros([1, 2], { device });
    const w13 = QuantizedTensor.empty('Q8_0', 34, 32, device);
    const w2 = QuantizedTensor.empty('Q8_0', 2 * 32, 32, device);
    expect(() => ops.quantFusedMoe(x.clone(), x, router, w13.data, w2.data, 8, 8, 1, false)).to.throw(
      RangeError,
      /quantFusedMoe: w13 rows \(34\) must be numExperts \(2\) \* 2 \* intermediate/,
    );
    expect(() => ops.quantFusedMoe(x.clone(), x, router, w2.data, w2.data, 8, 5, 1, false)).to.throw(
      RangeError,
      /quantFusedMoe: type2 must be a ggml quantised type id/,
    );
  });
});

describeEachCpuIsa('quantFusedMoePacked', () => {
  for (const type of ['Q4_0', 'Q8_0', 'Q4_K', 'Q6_K'] as const)
    for (const tokens of [1, 5, 40])
      it(`${type} experts interleaved by packQuantWeight: ${tokens} tokens, 4 experts top 2`, () => {
        const c = { tokens, hidden: 256, inter: 256, experts: 4, k: 2, renormalize: false };
        const rand = prng(QUANT_FORMATS[type].id * 11 + tokens);
        const [x, xs] = upload(randn(rand, tokens * c.hidden), [tokens, c.hidden], 'float32', 'cpu');
        const [router, rs] = upload(randn(rand, tokens * c.experts, 2), [tokens, c.experts], 'float32', 'cpu');
        const id = QUANT_FORMATS[type].id;
        const weight = (rows: number, cols: number) => {
          const w = QuantizedTensor.empty(type, rows, cols, 'cpu');
          w.writeRows(0, rows, quantizeRows(type, randn(rand, rows * cols, 0.06), rows, cols));
          const packed = Tensor.zeros(w.data.shape, { dtype: 'int32' });
          ops.packQuantWeight(packed, w.data, id);
          return { words: w.data.toArray() as Int32Array, packed };
        };
        const w13 = weight(c.experts * 2 * c.inter, c.hidden);
        const w2 = weight(c.experts * c.hidden, c.inter);
        const out = poisoned([tokens, c.hidden], 'float32', 'cpu');
        ops.quantFusedMoePacked(out, x, router, w13.packed, w2.packed, id, id, c.k, c.renormalize);
        // the interleaved GEMV (an expert with up to 16 tokens) rounds its input to 8 bits a block of 32
        const route = ref.moeRoute(rs, tokens, c.experts, c.k, c.renormalize);
        const count = (e: number) => route.experts.filter((v) => v === e).length;
        const q8 = (row: Float64Array, e: number) =>
          count(e) <= 16 ? ref.roundActivationsQ8(Float32Array.from(row)) : row;
        const shape = { numTokens: tokens, hidden: c.hidden, intermediate: c.inter, numExperts: c.experts };
        const want = ref.quantFusedMoePacked(xs, rs, w13.words, w2.words, shape, id, id, c.k, false, 'float32', q8);
        expectClose(out.toArray(), want, MOE_TOL.float32, 'out');
      });
  it('rejects a type the CPU does not interleave', () => {
    const x = Tensor.zeros([1, 32]);
    const w13 = Tensor.zeros([2 * 2 * 32, 9], { dtype: 'int32' });
    const w2 = Tensor.zeros([2 * 32, 5], { dtype: 'int32' }); // Q4_1: 20 bytes a row of 32
    expect(() => ops.quantFusedMoePacked(x.clone(), x, Tensor.zeros([1, 2]), w13, w2, 8, 3, 1, false)).to.throw(
      RangeError,
      /quantFusedMoePacked: type must be a type the CPU interleaves/,
    );
  });
});
