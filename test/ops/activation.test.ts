// siluAndMul against the float64 reference (silu rounded to the dtype before the multiply, as vLLM does).
import { expect } from 'chai';
import { FLOAT_DTYPES, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import { TOL, describeKernel, expectClose, poisoned, prng, randn, upload } from '../helpers.js';

const CASES = [
  ...[7, 83].flatMap((tokens) => [8, 768, 769, 5120, 5125, 8192].map((d) => ({ tokens, d }))),
  { tokens: 1, d: 14336 }, // a Llama-3-8B decode step
  { tokens: 4096, d: 768 },
];

describeKernel('siluAndMul', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const { tokens, d } of CASES) {
      it(`${dtype} [${tokens}, 2 x ${d}]`, () => {
        const rand = prng(tokens * 31 + d);
        // scale 4 reaches far into both tails of silu
        const [x, xs] = upload(randn(rand, tokens * 2 * d, 4), [tokens, 2 * d], dtype, device);
        const out = poisoned([tokens, d], dtype, device);
        ops.siluAndMul(out, x);
        expectClose(out.toArray(), ref.siluAndMul(xs, tokens, d, dtype), TOL[dtype], 'out');
        x.dispose();
        out.dispose();
      });
    }
  }

  it('extreme gate values: large magnitudes, ±Infinity-free outputs', () => {
    const gate = [-100, -88, -20, -1e-3, 0, 1e-3, 20, 88, 100, 1e4];
    const up = gate.map(() => 1.5);
    const [x, xs] = upload([...gate, ...up], [1, 2 * gate.length], 'float32', device);
    const out = poisoned([1, gate.length], 'float32', device);
    ops.siluAndMul(out, x);
    expectClose(out.toArray(), ref.siluAndMul(xs, 1, gate.length, 'float32'), TOL.float32, 'out');
  });

  it('rejects an out that shares memory with x (the kernel reads all of x while it writes out)', () => {
    const x = Tensor.zeros([3, 16], { device });
    for (const [start, what] of [
      [0, 'the gate half'],
      [8, 'the up half'],
      [4, 'straddling both'],
    ] as const)
      expect(() => ops.siluAndMul(x.narrow(1, start, 8), x), what).to.throw(
        RangeError,
        /siluAndMul: out and x must not overlap in memory/,
      );
    // rows of one buffer that x does not cover are fine
    const both = Tensor.zeros([3, 24], { device });
    expect(() => ops.siluAndMul(both.narrow(1, 16, 8), both.narrow(1, 0, 16))).to.not.throw();
  });
});
