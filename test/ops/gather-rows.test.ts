// gatherRows against the reference (each sequence's last token from a strided hidden state), with bad indices and
// shapes.
import { expect } from 'chai';

import { FLOAT_DTYPES, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import { describeKernel, expectBadIndex, expectClose, poisoned, prng, randn, upload } from '../helpers.js';

describeKernel('gatherRows', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    it(`${dtype}: each sequence's last token from a strided hidden state`, () => {
      const rand = prng(5);
      const [wide, ws] = upload(randn(rand, 40 * 100), [40, 100], dtype, device);
      const x = wide.narrow(1, 0, 64);
      const idx = [9, 20, 39, 0];
      const out = poisoned([4, 64], dtype, device);
      ops.gatherRows(out, x, Tensor.fromArray(idx, [4], { dtype: 'int32', device }));
      const xs = new Float32Array(40 * 64);
      for (let r = 0; r < 40; ++r) xs.set(ws.subarray(r * 100, r * 100 + 64), r * 64);
      expectClose(out.toArray(), ref.gatherRows(xs, idx, 64), { atol: 0, rtol: 0 }, 'out');
    });
  }

  it('an index outside x is a RangeError naming it (CPU: before copying; CUDA: at the next synchronize)', () => {
    const [x, out] = [Tensor.zeros([10, 8], { device }), Tensor.zeros([2, 8], { device })];
    expectBadIndex(
      device,
      (indices) => ops.gatherRows(out, x, indices),
      (bad) => new RegExp(`gatherRows: indices\\[1\\] = ${bad} is outside \\[0, 10\\)`),
      /an id or index is outside the table/,
    );
  });

  it('bad shapes throw naming the argument', () => {
    const table = Tensor.zeros([10, 8], { device });
    expect(() =>
      ops.gatherRows(Tensor.zeros([2, 8], { device }), table, Tensor.zeros([2, 1], { dtype: 'int32', device })),
    ).to.throw(RangeError, /gatherRows: indices must be 1-D/);
    expect(() =>
      ops.gatherRows(Tensor.zeros([2, 7], { device }), table, Tensor.zeros([2], { dtype: 'int32', device })),
    ).to.throw(RangeError, /gatherRows: out .*hidden/);
  });
});
