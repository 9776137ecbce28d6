// embedding, gatherRows and add against the reference, with bad indices and shapes.
import { expect } from 'chai';

import { FLOAT_DTYPES, Tensor, ops } from '../lib/index.js';
import * as ref from '../lib/reference/index.js';
import { TOL, describeDevices, expectClose, expectThrow, poisoned, prng, randint, randn, upload } from './helpers.js';

describeDevices('embedding and gatherRows', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const [vocab, hidden, tokens] of [[32000, 288, 7], [50, 4096, 130], [3, 5, 1]] as const) {
      it(`embedding ${dtype} vocab ${vocab} x ${hidden}, ${tokens} ids (repeats allowed)`, () => {
        const rand = prng(vocab + hidden);
        const [table, ts] = upload(randn(rand, vocab * hidden), [vocab, hidden], dtype, device);
        const idArr = randint(rand, tokens, 0, vocab);
        idArr[0] = vocab - 1;
        const ids = Tensor.fromArray(idArr, [tokens], { dtype: 'int32', device });
        const out = poisoned([tokens, hidden], dtype, device);
        ops.embedding(out, ids, table);
        expectClose(out.toArray(), ref.gatherRows(ts, idArr, hidden), { atol: 0, rtol: 0 }, 'out');
        [table, ids, out].forEach((t) => t.dispose());
      });
    }
    it(`gatherRows ${dtype}: each sequence's last token from a strided hidden state`, () => {
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

  it('an index outside the table is a RangeError naming it', () => {
    const table = Tensor.zeros([10, 8], { device });
    const out = Tensor.zeros([2, 8], { device });
    for (const bad of [10, -1]) {
      const ids = Tensor.fromArray([3, bad], [2], { dtype: 'int32', device });
      // CPU: before copying; CUDA: at the next synchronize
      expectThrow(() => {
        ops.embedding(out, ids, table);
        out.toArray();
      }, RangeError, device === 'cpu' ? new RegExp(`embedding: ids\\[1\\] = ${bad} is outside \\[0, 10\\)`) : /embedding \/ gatherRows: an id or index is outside the table/);
      expectThrow(() => {
        ops.gatherRows(out, table, ids);
        out.toArray();
      }, RangeError, device === 'cpu' ? new RegExp(`gatherRows: indices\\[1\\] = ${bad} is outside \\[0, 10\\)`) : /an id or index is outside the table/);
    }
  });

  it('bad shapes and dtypes throw naming the argument', () => {
    const table = Tensor.zeros([10, 8], { device });
    const ids = Tensor.fromArray([1, 2], [2], { dtype: 'int32', device });
    expect(() => ops.embedding(Tensor.zeros([2, 7], { device }), ids, table)).to.throw(RangeError, /embedding: out .*hidden/);
    expect(() => ops.embedding(Tensor.zeros([3, 8], { device }), ids, table)).to.throw(RangeError, /embedding: out .*one row per index/);
    expect(() => ops.embedding(Tensor.zeros([2, 8], { device }), Tensor.fromArray([1, 2], [2], { device }), table)).to.throw(TypeError, /embedding: ids must have dtype int32/);
    expect(() => ops.embedding(Tensor.zeros([2, 8], { dtype: 'float16', device }), ids, table)).to.throw(TypeError, /embedding: out dtype float16 does not match table/);
    expect(() => ops.gatherRows(Tensor.zeros([2, 8], { device }), table, Tensor.zeros([2, 1], { dtype: 'int32', device }))).to.throw(RangeError, /gatherRows: indices must be 1-D/);
  });
});

describeDevices('add', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const [tokens, hidden] of [[7, 4096], [3, 77], [130, 288]] as const) {
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
    expect(() => ops.add(Tensor.zeros([2, 8], { dtype: 'bfloat16', device }), a, a)).to.throw(TypeError, /add: out dtype bfloat16 does not match a/);
    expect(() => ops.add(a, a, 3 as never)).to.throw(TypeError, /add: b must be a Tensor/);
  });
});
