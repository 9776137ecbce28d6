// add against the reference, out of place and in place, with bad arguments.
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
