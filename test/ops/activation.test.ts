// siluAndMul and geluTanhAndMul against the float64 reference (the activation rounded to the dtype before the multiply,
// as vLLM does).
import { expect } from 'chai';
import { type Device, FLOAT_DTYPES, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import { TOL, describeKernel, expectClose, poisoned, prng, randn, upload } from '../helpers.js';

const CASES = [
  ...[7, 83].flatMap((tokens) => [8, 768, 769, 5120, 5125, 8192].map((d) => ({ tokens, d }))),
  { tokens: 1, d: 14336 }, // a Llama-3-8B decode step
  { tokens: 4096, d: 768 },
];

/** Each gated activation against its reference at every shape and dtype (gates of scale 4: far into both tails). */
function againstReference(op: 'siluAndMul' | 'geluTanhAndMul', device: Device, seed: number): void {
  for (const dtype of FLOAT_DTYPES) {
    for (const { tokens, d } of CASES) {
      it(`${dtype} [${tokens}, 2 x ${d}]`, () => {
        const rand = prng(tokens * seed + d);
        const [x, xs] = upload(randn(rand, tokens * 2 * d, 4), [tokens, 2 * d], dtype, device);
        const out = poisoned([tokens, d], dtype, device);
        ops[op](out, x);
        expectClose(out.toArray(), ref[op](xs, tokens, d, dtype), TOL[dtype], 'out');
        x.dispose();
        out.dispose();
      });
    }
  }
}

describeKernel('siluAndMul', (device) => {
  againstReference('siluAndMul', device, 31);

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

describeKernel('geluTanhAndMul', (device) => {
  againstReference('geluTanhAndMul', device, 37);

  it('extreme gate values, and a result that is not silu’s', () => {
    const gate = [-100, -88, -20, -3, -1e-3, 0, 1e-3, 0.5, 3, 20, 88, 100, 1e4];
    const up = gate.map(() => 1.5);
    const [x, xs] = upload([...gate, ...up], [1, 2 * gate.length], 'float32', device);
    const out = poisoned([1, gate.length], 'float32', device);
    ops.geluTanhAndMul(out, x);
    expectClose(out.toArray(), ref.geluTanhAndMul(xs, 1, gate.length, 'float32'), TOL.float32, 'out');
    // gelu(0.5) = 0.3457..., silu(0.5) = 0.3112...: the two gates are told apart
    expect(out.toArray()[7]).to.be.closeTo(1.5 * ref.geluTanh(0.5), 1e-5);
    expect(Math.abs(out.toArray()[7]! - 1.5 * ref.silu(0.5))).to.be.above(0.04);
  });

  it('rejects an out that shares memory with x, and an odd x', () => {
    const x = Tensor.zeros([3, 16], { device });
    expect(() => ops.geluTanhAndMul(x.narrow(1, 0, 8), x)).to.throw(
      RangeError,
      /geluTanhAndMul: out and x must not overlap in memory/,
    );
    expect(() => ops.geluTanhAndMul(Tensor.zeros([3, 7], { device }), Tensor.zeros([3, 15], { device }))).to.throw(
      RangeError,
      /geluTanhAndMul: x last dim must be even/,
    );
  });
});
