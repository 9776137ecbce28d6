// rmsNorm and fusedAddRmsNorm against the float64 reference (vLLM's rounding of the normalised value), strided
// rows, in-place use, and bad arguments; the tolerances they are held to.
import { expect } from 'chai';

import { FLOAT_DTYPES, type FloatDType, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import { TOL, describeKernel, expectClose, poisoned, prng, randn, upload } from '../helpers.js';

// vLLM's test shapes: token counts and hidden sizes (odd ones take the unaligned path).
const TOKENS = [7, 83];
const HIDDEN = [8, 768, 769, 5120, 5125, 8192];
const CASES = [
  ...TOKENS.flatMap((tokens) => HIDDEN.map((hidden) => ({ tokens, hidden }))),
  { tokens: 1, hidden: 4096 },
  { tokens: 4096, hidden: 768 },
];
const EPS = 1e-6;

describeKernel('rmsNorm', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const { tokens, hidden } of CASES) {
      it(`${dtype} [${tokens}, ${hidden}]`, () => {
        const rand = prng(tokens * 10007 + hidden);
        const [x, xs] = upload(randn(rand, tokens * hidden), [tokens, hidden], dtype, device);
        const [w, ws] = upload(randn(rand, hidden, 0.1, 1), [hidden], dtype, device);
        const out = poisoned([tokens, hidden], dtype, device);
        ops.rmsNorm(out, x, w, EPS);
        expectClose(out.toArray(), ref.rmsNorm(xs, ws, tokens, hidden, EPS, dtype), TOL[dtype], 'out');
        [x, w, out].forEach((t) => t.dispose());
      });
    }

    it(`${dtype} in place (out is x) and strided rows`, () => {
      const rand = prng(17);
      const tokens = 9;
      const hidden = 768;
      // x is the left half of a wider buffer: rows are strided.
      const [wide, wides] = upload(randn(rand, tokens * 2 * hidden), [tokens, 2 * hidden], dtype, device);
      const x = wide.narrow(1, 0, hidden);
      const xs = new Float32Array(tokens * hidden);
      for (let t = 0; t < tokens; ++t) xs.set(wides.subarray(t * 2 * hidden, t * 2 * hidden + hidden), t * hidden);
      const [w, ws] = upload(randn(rand, hidden, 0.1, 1), [hidden], dtype, device);
      const expected = ref.rmsNorm(xs, ws, tokens, hidden, EPS, dtype);
      ops.rmsNorm(x, x, w, EPS);
      expectClose(x.toArray(), expected, TOL[dtype], 'x (in place, strided)');
      // the right half of each row is untouched
      const after = wide.toArray();
      for (let t = 0; t < tokens; ++t)
        expect(Array.from(after.subarray(t * 2 * hidden + hidden, (t + 1) * 2 * hidden))).to.deep.equal(
          Array.from(wides.subarray(t * 2 * hidden + hidden, (t + 1) * 2 * hidden)),
        );
      wide.dispose();
      w.dispose();
    });
  }

  it('zero tokens is a no-op', () => {
    const x = Tensor.empty([0, 64], { device });
    const w = Tensor.full([64], 1, { device });
    ops.rmsNorm(x, x, w, EPS);
    expect(x.numel).to.equal(0);
  });
});

describeKernel('fusedAddRmsNorm', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const { tokens, hidden } of CASES) {
      it(`${dtype} [${tokens}, ${hidden}]`, () => {
        const rand = prng(tokens * 7919 + hidden);
        const [x, xs] = upload(randn(rand, tokens * hidden), [tokens, hidden], dtype, device);
        const [r, rs] = upload(randn(rand, tokens * hidden), [tokens, hidden], dtype, device);
        const [w, ws] = upload(randn(rand, hidden, 0.1, 1), [hidden], dtype, device);
        // the reference is computed from the inputs before the in-place op overwrites them
        const expected = ref.fusedAddRmsNorm(xs, rs, ws, tokens, hidden, EPS, dtype);
        ops.fusedAddRmsNorm(x, r, w, EPS);
        expectClose(r.toArray(), expected.residual, TOL[dtype], 'residual');
        expectClose(x.toArray(), expected.x, TOL[dtype], 'x');
        [x, r, w].forEach((t) => t.dispose());
      });
    }
  }

  it('rejects x and residual being the same memory', () => {
    const x = Tensor.zeros([2, 8], { device });
    const w = Tensor.full([8], 1, { device });
    expect(() => ops.fusedAddRmsNorm(x, x, w, EPS)).to.throw(RangeError, /x and residual must not overlap in memory/);
  });

  it('rejects x and residual rows that partly overlap (one buffer, shifted by a row or half a row)', () => {
    const buf = Tensor.zeros([40], { device });
    const w = Tensor.full([8], 1, { device });
    const rows = (start: number) => buf.narrow(0, start, 16).view([2, 8]);
    for (const shift of [8, 4, 1])
      expect(() => ops.fusedAddRmsNorm(rows(0), rows(shift), w, EPS), `shift ${shift}`).to.throw(
        RangeError,
        /fusedAddRmsNorm: x and residual must not overlap in memory/,
      );
    expect(() => ops.fusedAddRmsNorm(rows(0), rows(16), w, EPS)).to.not.throw();
    // rmsNorm runs in place (out is x), but a shifted view of x is not in place
    expect(() => ops.rmsNorm(rows(8), rows(0), w, EPS)).to.throw(
      RangeError,
      /rmsNorm: out and x must be the same view \(in place\) or not overlap in memory/,
    );
    expect(() => ops.rmsNorm(rows(0), rows(0), w, EPS)).to.not.throw();
  });
});

// Qwen3's and Gemma 3's q/k norms: each head of each token of a [tokens, heads, headDim] view of a fused qkv buffer
// (token stride the qkv width, heads dense), normalised on its own, in place; the rest of the buffer untouched.
describeKernel('rmsNormHeads', (device) => {
  const SHAPES = [
    { tokens: 7, heads: 4, headDim: 128, before: 2, after: 3 },
    { tokens: 1, heads: 16, headDim: 64, before: 0, after: 8 },
    { tokens: 33, heads: 3, headDim: 24, before: 5, after: 1 }, // 24: the unaligned (non-pack) path
    { tokens: 5, heads: 2, headDim: 256, before: 1, after: 0 },
  ];
  for (const dtype of FLOAT_DTYPES) {
    for (const { tokens, heads, headDim, before, after } of SHAPES) {
      it(`${dtype} [${tokens}, ${heads}, ${headDim}] inside ${before} + ${heads} + ${after} heads, in place`, () => {
        const rand = prng(tokens * 131 + heads * 17 + headDim);
        const width = (before + heads + after) * headDim;
        const [buf, bufs] = upload(randn(rand, tokens * width), [tokens, width], dtype, device);
        const [w, ws] = upload(randn(rand, headDim, 0.1, 1), [headDim], dtype, device);
        const x = buf.view([tokens, before + heads + after, headDim]).narrow(1, before, heads);
        const xs = new Float32Array(tokens * heads * headDim);
        for (let t = 0; t < tokens; ++t)
          xs.set(
            bufs.subarray(t * width + before * headDim, t * width + (before + heads) * headDim),
            t * heads * headDim,
          );
        const expected = ref.rmsNormHeads(xs, ws, tokens, heads, headDim, EPS, dtype);
        ops.rmsNormHeads(x, x, w, EPS);
        const got = buf.toArray();
        for (let t = 0; t < tokens; ++t) {
          const row = got.subarray(t * width, (t + 1) * width);
          const at = before * headDim;
          expectClose(
            row.subarray(at, at + heads * headDim),
            expected.subarray(t * heads * headDim, (t + 1) * heads * headDim),
            TOL[dtype],
            `token ${t}`,
          );
          const old = bufs.subarray(t * width, (t + 1) * width);
          expect(Array.from(row.subarray(0, at)), `token ${t} before`).to.deep.equal(Array.from(old.subarray(0, at)));
          expect(Array.from(row.subarray(at + heads * headDim)), `token ${t} after`).to.deep.equal(
            Array.from(old.subarray(at + heads * headDim)),
          );
        }
        buf.dispose();
        w.dispose();
      });
    }

    it(`${dtype} into a separate output (a NaN-poisoned one: every element written)`, () => {
      const rand = prng(99);
      const [tokens, heads, headDim] = [6, 5, 32];
      const [x, xs] = upload(randn(rand, tokens * heads * headDim), [tokens, heads, headDim], dtype, device);
      const [w, ws] = upload(randn(rand, headDim, 0.1, 1), [headDim], dtype, device);
      const out = poisoned([tokens, heads, headDim], dtype, device);
      ops.rmsNormHeads(out, x, w, EPS);
      expectClose(out.toArray(), ref.rmsNormHeads(xs, ws, tokens, heads, headDim, EPS, dtype), TOL[dtype], 'out');
      [x, w, out].forEach((t) => t.dispose());
    });
  }

  it('differs from rmsNorm over the whole row (each head has its own scale)', () => {
    const rand = prng(5);
    const [x, xs] = upload(randn(rand, 2 * 64), [1, 2, 64], 'float32', device);
    const w = Tensor.full([64], 1, { device });
    const out = Tensor.zeros([1, 2, 64], { device });
    ops.rmsNormHeads(out, x, w, EPS);
    const whole = ref.rmsNorm(xs, new Float32Array(128).fill(1), 1, 128, EPS, 'float32');
    const got = out.toArray();
    expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - whole[i]!)))).to.be.above(1e-3);
    [x, w, out].forEach((t) => t.dispose());
  });

  it('rejects a weight of the wrong length, a rank-2 x, and a shifted output', () => {
    const x = Tensor.zeros([2, 3, 16], { device });
    const w = Tensor.full([16], 1, { device });
    expect(() => ops.rmsNormHeads(x, x, Tensor.full([8], 1, { device }), EPS)).to.throw(RangeError, /weight/);
    expect(() => ops.rmsNormHeads(x, x.view([2, 48]), w, EPS)).to.throw(RangeError, /rmsNormHeads: x/);
    const buf = Tensor.zeros([2 * 4 * 16], { device }).view([2, 4, 16]);
    expect(() => ops.rmsNormHeads(buf.narrow(1, 1, 3), buf.narrow(1, 0, 3), w, EPS)).to.throw(
      RangeError,
      /rmsNormHeads: out and x must be the same view/,
    );
    expect(() => ops.rmsNormHeads(x, x, w, 0)).to.throw(RangeError, /eps/);
  });
});

// The tolerance table itself must reject a one-ulp-plus error at each dtype, or the tests above prove little.
describe('tolerances', () => {
  const cases: [FloatDType, number][] = [
    ['float32', 1e-4],
    ['float16', 1e-2],
    ['bfloat16', 5e-2],
  ];
  for (const [dtype, error] of cases) {
    it(`${dtype} rejects a relative error of ${error}`, () => {
      expect(() => expectClose([1 + error], [1], TOL[dtype])).to.throw(/out of tolerance/);
      expect(() => expectClose([NaN], [1], TOL[dtype])).to.throw(/out of tolerance/);
    });
  }
});
