// scale and softCap against the float64 reference: every dtype, odd and long rows, in place inside a wider buffer
// (strided rows, the rest untouched), poisoned outputs, and bad arguments.
import { expect } from 'chai';
import { FLOAT_DTYPES, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import { TOL, describeKernel, expectClose, poisoned, prng, randn, upload } from '../helpers.js';

const CASES = [
  { tokens: 7, d: 2304 }, // Gemma 2 2B's hidden size
  { tokens: 3, d: 769 },
  { tokens: 1, d: 256000 }, // one row of Gemma's logits
  { tokens: 33, d: 8 },
];

describeKernel('scale', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const { tokens, d } of CASES) {
      it(`${dtype} [${tokens}, ${d}] by √${d}`, () => {
        const rand = prng(tokens * 13 + d);
        const [x, xs] = upload(randn(rand, tokens * d), [tokens, d], dtype, device);
        const out = poisoned([tokens, d], dtype, device);
        ops.scale(out, x, Math.sqrt(d));
        expectClose(out.toArray(), ref.scale(xs, Math.sqrt(d), dtype), TOL[dtype], 'out');
        [x, out].forEach((t) => t.dispose());
      });
    }
    it(`${dtype} in place on the left half of wider rows`, () => {
      const [wide, ws] = upload(randn(prng(3), 5 * 64), [5, 64], dtype, device);
      const x = wide.narrow(1, 0, 40);
      ops.scale(x, x, -0.5);
      const got = wide.toArray();
      for (let t = 0; t < 5; ++t) {
        expectClose(
          got.subarray(t * 64, t * 64 + 40),
          ref.scale(ws.subarray(t * 64, t * 64 + 40), -0.5, dtype),
          TOL[dtype],
          `row ${t}`,
        );
        expect(Array.from(got.subarray(t * 64 + 40, (t + 1) * 64))).to.deep.equal(
          Array.from(ws.subarray(t * 64 + 40, (t + 1) * 64)),
        );
      }
      wide.dispose();
    });
  }
  it('rejects a non-finite factor, a shape mismatch, and a shifted output', () => {
    const x = Tensor.zeros([2, 16], { device });
    expect(() => ops.scale(x, x, Infinity)).to.throw(RangeError, /scale: factor must be a finite number/);
    expect(() => ops.scale(Tensor.zeros([2, 8], { device }), x, 2)).to.throw(RangeError, /scale: out/);
    const buf = Tensor.zeros([40], { device });
    expect(() => ops.scale(buf.narrow(0, 8, 32).view([2, 16]), buf.narrow(0, 0, 32).view([2, 16]), 2)).to.throw(
      RangeError,
      /scale: out and x must be the same view/,
    );
  });
});

describeKernel('softCap', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const { tokens, d } of CASES) {
      it(`${dtype} [${tokens}, ${d}], cap 30 over logits of spread 40`, () => {
        const rand = prng(tokens * 17 + d);
        const [x, xs] = upload(randn(rand, tokens * d, 40), [tokens, d], dtype, device);
        const out = poisoned([tokens, d], dtype, device);
        ops.softCap(out, x, 30);
        expectClose(out.toArray(), ref.softCap(xs, 30, dtype), TOL[dtype], 'out');
        [x, out].forEach((t) => t.dispose());
      });
    }
  }
  it('saturates at ±cap, keeps 0, is odd, and is not a clamp', () => {
    const xs = [-1e6, -300, -30, -1, 0, 1e-3, 1, 30, 300, 1e6];
    const [x] = upload(xs, [1, xs.length], 'float32', device);
    const out = poisoned([1, xs.length], 'float32', device);
    ops.softCap(out, x, 30);
    const got = out.toArray();
    expectClose(got, ref.softCap(xs, 30, 'float32'), TOL.float32, 'out');
    expect(got[0]).to.equal(-30);
    expect(got[9]).to.equal(30);
    expect(got[4]).to.equal(0);
    expect(got[5]).to.be.closeTo(1e-3, 30 * 2.4e-7); // near 0: cap times a couple of fp32 ulps of e^(2x/cap), absolute
    expect(got[7]).to.be.closeTo(30 * Math.tanh(1), 1e-4); // 22.85, where a clamp would give 30
  });
  it('rejects a cap that is not positive', () => {
    const x = Tensor.zeros([2, 16], { device });
    expect(() => ops.softCap(x, x, 0)).to.throw(RangeError, /softCap: cap/);
    expect(() => ops.softCap(x, x, NaN)).to.throw(RangeError, /softCap: cap/);
  });
});
