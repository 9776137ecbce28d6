// sampleRows, the native row sampler, against the float64 reference: the same token for thousands of (params, draw)
// pairs, several rows in one call, and bad input. applyTokenBitmask against the reference: random masks (bit order
// matters), words of all 1s and all 0s, a vocabulary that ends mid-word, strided rows, rows left alone; bad rows and
// shapes.
import { expect } from 'chai';
import { FLOAT_DTYPES, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import { synchronize } from '../../lib/runtime.js';
import { describeEachCpuIsa, describeKernel, expectClose, expectThrow, prng, randn, upload } from '../helpers.js';

describeEachCpuIsa('sampleRows on cpu', function () {
  const V = 1000;
  const logits = randn(prng(7), V, 2);
  /** Settings for `rows` greedy rows (temperature 0). */
  const greedy = (rows: number) => ({
    temperature: new Float32Array(rows),
    topK: new Int32Array(rows),
    topP: new Float32Array(rows).fill(1),
    minP: new Float32Array(rows),
    uniform: new Float64Array(rows),
  });

  it('picks the same token as the reference for 2400 (params, draw) pairs', () => {
    const cases = [
      { temperature: 1, topK: 0, topP: 1, minP: 0 },
      { temperature: 0.7, topK: 40, topP: 1, minP: 0 },
      { temperature: 1.3, topK: 0, topP: 0.9, minP: 0 },
      { temperature: 1, topK: 0, topP: 1, minP: 0.05 },
      { temperature: 0.8, topK: 50, topP: 0.95, minP: 0.02 },
      { temperature: 2, topK: 1, topP: 1, minP: 0 },
    ];
    let compared = 0;
    for (const [ci, p] of cases.entries()) {
      const row = randn(prng(100 + ci), V, 3);
      const { ids, probs } = ref.keptDistribution(row, p);
      // Cumulative boundaries, to skip draws that float32 and float64 may place on different sides.
      const edges: number[] = [];
      probs.reduce((a, q) => (edges.push(a + q), a + q), 0);
      for (let k = 0; k < 400; ++k) {
        const u = (k + 0.5) / 400;
        if (edges.some((e) => Math.abs(e - u) < 1e-5)) continue;
        const got = ops.sampleRows(row, 1, V, {
          temperature: Float32Array.of(p.temperature),
          topK: Int32Array.of(p.topK),
          topP: Float32Array.of(p.topP),
          minP: Float32Array.of(p.minP),
          uniform: Float64Array.of(u),
        })[0]!;
        expect(got, `case ${ci} u=${u}`).to.equal(ref.sampleReference(row, p, u));
        expect(ids).to.include(got);
        compared++;
      }
    }
    expect(compared).to.be.greaterThan(2300);
  });

  it('samples several rows in one call, each with its own settings, as the reference does', () => {
    const rows = 4;
    const data = randn(prng(3), rows * V, 2);
    const params = {
      temperature: Float32Array.of(0, 1, 0.7, 1.5),
      topK: Int32Array.of(0, 40, 0, 5),
      topP: Float32Array.of(1, 1, 0.9, 1),
      minP: Float32Array.of(0, 0, 0.05, 0),
      uniform: Float64Array.of(0.5, 0.25, 0.75, 0.1),
    };
    expect([...ops.sampleRows(data, rows, V, params)]).to.deep.equal([...ref.sampleRows(data, rows, V, params)]);
  });

  it('greedy rows take the first largest logit wherever it lies, as the reference does', () => {
    // the native argmax finds the span of 256 holding the maximum first: ties within a span and across spans, the
    // maximum in the last (short) span, and a row of -Infinity
    const n = 1000;
    const rows: Float32Array[] = [];
    for (const at of [[0], [255, 256], [300, 299], [700, 20], [999], [511, 512, 513]]) {
      const row = randn(prng(40 + at[0]!), n, 1);
      for (const i of at) row[i] = 9;
      rows.push(row);
    }
    rows.push(new Float32Array(n).fill(-Infinity));
    const data = new Float32Array(rows.length * n);
    rows.forEach((r, i) => data.set(r, i * n));
    const got = [...ops.sampleRows(data, rows.length, n, greedy(rows.length))];
    expect(got).to.deep.equal([0, 255, 299, 20, 999, 511, 0]);
    expect(got).to.deep.equal([...ref.sampleRows(data, rows.length, n, greedy(rows.length))]);
  });

  it('names the first NaN or +Infinity logit, wherever it lies', () => {
    for (const [i, v, shown] of [
      [0, NaN, 'nan'],
      [517, Infinity, 'inf'],
      [V - 1, NaN, 'nan'],
    ] as const) {
      const row = Float32Array.from(logits);
      row[i] = v;
      if (i > 0) row[i - 1] = -Infinity; // allowed, and not the one named
      expectThrow(
        () => ops.sampleRows(row, 1, V, greedy(1)),
        RangeError,
        new RegExp(`logits\\[0, ${i}\\] = ${shown} `),
      );
    }
    const ok = Float32Array.from(logits);
    ok[3] = -Infinity;
    expect(() => ops.sampleRows(ok, 1, V, greedy(1))).not.to.throw();
  });

  it('rejects bad arrays, params and logits with errors that name them', () => {
    const one = {
      temperature: Float32Array.of(1),
      topK: Int32Array.of(0),
      topP: Float32Array.of(1),
      minP: Float32Array.of(0),
      uniform: Float64Array.of(1),
    };
    expectThrow(() => ops.sampleRows(logits, 1, V, one), RangeError, /uniform\[0\] = 1 must be in \[0, 1\)/);
    expectThrow(
      () => ops.sampleRows(logits, 1, V, { ...one, uniform: Float64Array.of(0.5), topK: Float32Array.of(0) as never }),
      TypeError,
      /topK must be a Int32Array/,
    );
    expectThrow(
      () => ops.sampleRows(logits, 2, V, { ...one, uniform: Float64Array.of(0.5) }),
      RangeError,
      /logits has 1000 elements, expected 2000/,
    );
    const ok = { ...one, uniform: Float64Array.of(0.5) };
    expectThrow(
      () => ops.sampleRows([1, 2] as never, 1, 2, ok),
      TypeError,
      /sampleRows: logits must be a Float32Array, got array/,
    );
    expectThrow(
      () => ops.sampleRows(logits, 1, V, null as never),
      TypeError,
      /sampleRows: params must be an object, got null/,
    );
    expectThrow(
      () => ops.sampleRows(logits, 1, V, ok, new Int32Array(2)),
      RangeError,
      /sampleRows: out has 2 elements, expected 1/,
    );
    expectThrow(
      () => ops.sampleRows(logits, 1.5, V, ok),
      RangeError,
      /sampleRows: rows must be a non-negative integer, got 1.5/,
    );
  });
});

/** A mask row: random bits, with some words all allowed and some all refused (the two fast cases). */
function randomMask(rand: () => number, words: number): Int32Array {
  const m = new Int32Array(words);
  for (let w = 0; w < words; ++w) {
    const kind = rand();
    m[w] = kind < 0.25 ? -1 : kind < 0.4 ? 0 : (rand() * 2 ** 32) | 0;
  }
  return m;
}

describeKernel('applyTokenBitmask', (device) => {
  for (const dtype of FLOAT_DTYPES)
    for (const vocab of [33, 1000])
      it(`${dtype}, vocab ${vocab}: rows 3 and 0 of 5 (strided) masked, the others untouched`, () => {
        const rand = prng(vocab);
        const words = Math.ceil(vocab / 32);
        const [wide, ws] = upload(randn(rand, 5 * (vocab + 8)), [5, vocab + 8], dtype, device);
        const logits = wide.narrow(1, 0, vocab);
        const rows = [3, 0];
        const mask = new Int32Array(rows.length * words);
        rows.forEach((_, i) => mask.set(randomMask(rand, words), i * words));
        ops.applyTokenBitmask(
          logits,
          Tensor.fromArray(mask, [rows.length, words], { dtype: 'int32', device }),
          Tensor.fromArray(rows, [rows.length], { dtype: 'int32', device }),
        );
        const before = new Float32Array(5 * vocab);
        for (let r = 0; r < 5; ++r) before.set(ws.subarray(r * (vocab + 8), r * (vocab + 8) + vocab), r * vocab);
        const want = ref.applyTokenBitmask(before, vocab, mask, rows);
        const got = logits.toArray() as Float32Array;
        const refused = want.filter((v) => v === -Infinity).length;
        expect(refused, 'the masks refuse some tokens').to.be.greaterThan(0);
        expect(refused, 'and allow some').to.be.lessThan(2 * vocab);
        for (let i = 0; i < want.length; ++i)
          if (want[i] === -Infinity)
            expect(got[i], `logits[${Math.floor(i / vocab)}, ${i % vocab}]`).to.equal(-Infinity);
        expectClose(
          got.map((v, i) => (want[i] === -Infinity ? 0 : v)),
          want.map((v) => (v === -Infinity ? 0 : v)),
          { atol: 0, rtol: 0 },
          'the allowed logits and the rows not named',
        );
        // the columns past the view are not touched
        const full = wide.toArray() as Float32Array;
        for (let r = 0; r < 5; ++r)
          for (let c = vocab; c < vocab + 8; ++c) expect(full[r * (vocab + 8) + c]).to.equal(ws[r * (vocab + 8) + c]);
      });

  it('no rows is a no-op', () => {
    const [logits, vals] = upload([1, 2, 3], [1, 3], 'float32', device);
    ops.applyTokenBitmask(
      logits,
      Tensor.zeros([0, 1], { dtype: 'int32', device }),
      Tensor.zeros([0], { dtype: 'int32', device }),
    );
    expect(Array.from(logits.toArray())).to.deep.equal(Array.from(vals));
  });

  it('a rows entry outside the logits is a RangeError (CPU: before writing; CUDA: at the next synchronize)', () => {
    const logits = Tensor.zeros([4, 40], { device });
    const mask = Tensor.zeros([2, 2], { dtype: 'int32', device });
    for (const bad of [4, -1]) {
      const rows = Tensor.fromArray([1, bad], [2], { dtype: 'int32', device });
      expectThrow(
        () => {
          ops.applyTokenBitmask(logits, mask, rows);
          synchronize(device);
        },
        RangeError,
        device === 'cpu'
          ? new RegExp(`applyTokenBitmask: rows\\[1\\] = ${bad} is outside \\[0, 4\\)`)
          : /applyTokenBitmask: a rows entry is outside/,
      );
    }
  });

  it('bad shapes and dtypes throw naming the argument', () => {
    const logits = Tensor.zeros([4, 40], { device });
    const rows = Tensor.zeros([2], { dtype: 'int32', device });
    expect(() => ops.applyTokenBitmask(logits, Tensor.zeros([2, 1], { dtype: 'int32', device }), rows)).to.throw(
      RangeError,
      /applyTokenBitmask: bitmask .*ceil\(vocab \/ 32\)/,
    );
    expect(() => ops.applyTokenBitmask(logits, Tensor.zeros([2, 2], { device }), rows)).to.throw(
      /applyTokenBitmask: bitmask .*int32/,
    );
    expect(() => ops.applyTokenBitmask(logits, Tensor.zeros([3, 2], { dtype: 'int32', device }), rows)).to.throw(
      RangeError,
      /applyTokenBitmask: rows .*one logits row per bitmask row/,
    );
  });
});
