// add and sigmoidGatedAdd against the reference, out of place and in place, with bad arguments.
import { expect } from 'chai';

import { FLOAT_DTYPES, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import { TOL, describeKernel, expectClose, poisoned, prng, randn, upload } from '../helpers.js';

describeKernel('add', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const [tokens, hidden] of [
      [7, 4096],
      [3, 77],
      [130, 288],
    ] as const) {
      it(`${dtype} [${tokens}, ${hidden}], and in place`, () => {
        const rand = prng(tokens * hidden);
        const [a, as] = upload(randn(rand, tokens * hidden), [tokens, hidden], dtype, device);
        const [b, bs] = upload(randn(rand, tokens * hidden), [tokens, hidden], dtype, device);
        const expected = ref.add(as, bs, dtype);
        const out = poisoned([tokens, hidden], dtype, device);
        ops.add(out, a, b);
        expectClose(out.toArray(), expected, TOL[dtype], 'out');
        ops.add(a, a, b);
        expectClose(a.toArray(), expected, TOL[dtype], 'a (in place)');
      });
    }
  }

  it('bad arguments throw naming the argument', () => {
    const a = Tensor.zeros([2, 8], { device });
    expect(() => ops.add(a, a, Tensor.zeros([2, 9], { device }))).to.throw(RangeError, /add: b .*shape of a/);
    expect(() => ops.add(Tensor.zeros([2, 8], { dtype: 'bfloat16', device }), a, a)).to.throw(
      TypeError,
      /add: out dtype bfloat16 does not match a/,
    );
    expect(() => ops.add(a, a, 3 as never)).to.throw(TypeError, /add: b must be a Tensor/);
  });
});

describeKernel('sigmoidGatedAdd', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const [tokens, hidden] of [
      [7, 2048],
      [3, 77],
      [130, 64],
    ] as const) {
      it(`${dtype} [${tokens}, ${hidden}], a gate per row from -12 to 12, and in place`, () => {
        const rand = prng(tokens * hidden + 1);
        const [a, as] = upload(randn(rand, tokens * hidden), [tokens, hidden], dtype, device);
        const [b, bs] = upload(randn(rand, tokens * hidden, 3), [tokens, hidden], dtype, device);
        const gates = Float32Array.from({ length: tokens }, (_, t) => -12 + (24 * t) / Math.max(1, tokens - 1));
        const [gate, gs] = upload(gates, [tokens, 1], dtype, device);
        const expected = ref.sigmoidGatedAdd(as, bs, gs, hidden, dtype);
        const out = poisoned([tokens, hidden], dtype, device);
        ops.sigmoidGatedAdd(out, a, b, gate);
        expectClose(out.toArray(), expected, TOL[dtype], 'out');
        ops.sigmoidGatedAdd(a, a, b, gate);
        expectClose(a.toArray(), expected, TOL[dtype], 'a (in place)');
      });
    }
  }

  it('a strided gate (a column of a wider tensor)', () => {
    const rand = prng(5);
    const [a, as] = upload(randn(rand, 4 * 32), [4, 32], 'float32', device);
    const [b, bs] = upload(randn(rand, 4 * 32), [4, 32], 'float32', device);
    const [wide, ws] = upload(randn(rand, 4 * 3, 2), [4, 3], 'float32', device);
    const out = poisoned([4, 32], 'float32', device);
    ops.sigmoidGatedAdd(out, a, b, wide.narrow(1, 2, 1));
    const g = [0, 1, 2, 3].map((t) => ws[t * 3 + 2]!);
    expectClose(out.toArray(), ref.sigmoidGatedAdd(as, bs, g, 32, 'float32'), TOL.float32, 'out');
  });

  it('bad arguments throw naming the argument', () => {
    const a = Tensor.zeros([2, 8], { device });
    expect(() => ops.sigmoidGatedAdd(a, a, a, Tensor.zeros([2, 2], { device }))).to.throw(
      RangeError,
      /sigmoidGatedAdd: gate .*1/,
    );
    expect(() => ops.sigmoidGatedAdd(a, a, a, Tensor.zeros([3, 1], { device }))).to.throw(
      RangeError,
      /sigmoidGatedAdd: gate .*numTokens of a/,
    );
    expect(() => ops.sigmoidGatedAdd(a, a, a, Tensor.zeros([2, 1], { dtype: 'bfloat16', device }))).to.throw(
      TypeError,
      /sigmoidGatedAdd: gate dtype bfloat16 does not match a/,
    );
  });
});
