// embedding against the reference, with bad ids and shapes; and embeddingPacked (CPU), the rows of a table packed by
// packLinearWeight (a tied embedding), against the reference and against embedding() on the same table.
import { expect } from 'chai';

import { FLOAT_DTYPES, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import {
  describeEachCpuIsa,
  describeKernel,
  expectBadIndex,
  expectClose,
  expectThrow,
  poisoned,
  prng,
  randint,
  randn,
  upload,
} from '../helpers.js';

describeKernel('embedding', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const [vocab, hidden, tokens] of [
      [32000, 288, 7],
      [50, 4096, 130],
      [3, 5, 1],
    ] as const) {
      it(`${dtype} vocab ${vocab} x ${hidden}, ${tokens} ids (repeats allowed)`, () => {
        const rand = prng(vocab + hidden);
        const [table, ts] = upload(randn(rand, vocab * hidden), [vocab, hidden], dtype, device);
        const idArr = randint(rand, tokens, 0, vocab);
        idArr[0] = vocab - 1;
        const ids = Tensor.fromArray(idArr, [tokens], { dtype: 'int32', device });
        const out = poisoned([tokens, hidden], dtype, device);
        ops.embedding(out, ids, table);
        expectClose(out.toArray(), ref.embedding(ts, idArr, hidden), { atol: 0, rtol: 0 }, 'out');
        [table, ids, out].forEach((t) => t.dispose());
      });
    }
  }

  it('an id outside the table is a RangeError naming it', () => {
    const table = Tensor.zeros([10, 8], { device });
    const out = Tensor.zeros([2, 8], { device });
    // CPU: before copying; CUDA: at the next synchronize
    expectBadIndex(
      device,
      (ids) => ops.embedding(out, ids, table),
      (bad) => new RegExp(`embedding: ids\\[1\\] = ${bad} is outside \\[0, 10\\)`),
      /embedding \/ gatherRows: an id or index is outside the table/,
    );
  });

  it('bad shapes and dtypes throw naming the argument', () => {
    const table = Tensor.zeros([10, 8], { device });
    const ids = Tensor.fromArray([1, 2], [2], { dtype: 'int32', device });
    expect(() => ops.embedding(Tensor.zeros([2, 7], { device }), ids, table)).to.throw(
      RangeError,
      /embedding: out .*hidden/,
    );
    expect(() => ops.embedding(Tensor.zeros([3, 8], { device }), ids, table)).to.throw(
      RangeError,
      /embedding: out .*one row per index/,
    );
    expect(() =>
      ops.embedding(Tensor.zeros([2, 8], { device }), Tensor.fromArray([1, 2], [2], { device }), table),
    ).to.throw(TypeError, /embedding: ids must have dtype int32/);
    expect(() => ops.embedding(Tensor.zeros([2, 8], { dtype: 'float16', device }), ids, table)).to.throw(
      TypeError,
      /embedding: out dtype float16 does not match table/,
    );
  });
});

describeEachCpuIsa('embeddingPacked (CPU)', () => {
  const device = 'cpu';
  for (const dtype of FLOAT_DTYPES)
    for (const [vocab, hidden, tokens] of [
      [37, 23, 9], // a last panel of 5 rows, 11 of padding
      [64, 768, 20],
      [1, 1, 1],
    ] as const)
      it(`${dtype} vocab ${vocab} x ${hidden}, ${tokens} ids: the rows embedding() gives, bit for bit`, () => {
        const rand = prng(vocab * 31 + hidden);
        const [table, ts] = upload(randn(rand, vocab * hidden), [vocab, hidden], dtype, device);
        const packed = poisoned([Math.ceil(vocab / 16), hidden, 16], dtype, device);
        ops.packLinearWeight(packed, table);
        const idArr = randint(rand, tokens, 0, vocab);
        idArr[0] = vocab - 1;
        if (tokens > 1) idArr[1] = 0;
        const ids = Tensor.fromArray(idArr, [tokens], { dtype: 'int32', device });
        const out = poisoned([tokens, hidden], dtype, device);
        ops.embeddingPacked(out, ids, packed, vocab);
        expectClose(out.toArray(), ref.embeddingPacked(packed.toArray(), idArr, hidden), { atol: 0, rtol: 0 }, 'out');
        expectClose(out.toArray(), ref.embedding(ts, idArr, hidden), { atol: 0, rtol: 0 }, 'out against the table');
        const plain = poisoned([tokens, hidden], dtype, device);
        ops.embedding(plain, ids, table);
        expect([...out.toArray()]).to.deep.equal([...plain.toArray()]);
        [table, packed, ids, out, plain].forEach((t) => t.dispose());
      });

  it('an id outside [0, vocabSize) is a RangeError naming it, the padding rows included', () => {
    const packed = Tensor.zeros([1, 8, 16], { device });
    const out = Tensor.zeros([2, 8], { device });
    expectBadIndex(
      device,
      (ids) => ops.embeddingPacked(out, ids, packed, 10),
      (bad) => new RegExp(`embeddingPacked: ids\\[1\\] = ${bad} is outside \\[0, 10\\)`),
      /unused on the CPU/,
    );
  });

  it('bad shapes, dtypes and vocabSize throw naming the argument', () => {
    const packed = Tensor.zeros([2, 8, 16], { device });
    const ids = Tensor.fromArray([1, 2], [2], { dtype: 'int32', device });
    const out = Tensor.zeros([2, 8], { device });
    expectThrow(() => ops.embeddingPacked(out, ids, packed, 40), RangeError, /embeddingPacked: table .*numPanels/);
    expectThrow(() => ops.embeddingPacked(out, ids, packed, 16), RangeError, /embeddingPacked: table .*numPanels/);
    expectThrow(() => ops.embeddingPacked(out, ids, packed, 20.5), RangeError, /vocabSize/);
    expectThrow(() => ops.embeddingPacked(Tensor.zeros([2, 7], { device }), ids, packed, 20), RangeError, /hidden/);
    expectThrow(() => ops.embeddingPacked(out, ids, Tensor.zeros([2, 8, 8], { device }), 20), RangeError, /16 rows/);
    expectThrow(
      () => ops.embeddingPacked(Tensor.zeros([2, 8], { dtype: 'float16', device }), ids, packed, 20),
      TypeError,
      /embeddingPacked: out dtype float16 does not match table/,
    );
  });
});
