// ops.fillUniform (the dummy weights' generator) against its reference, and dummy models built with it.
import { expect } from 'chai';
import { type Device, ops, Tensor } from '../lib/index.js';
import { loadModel } from '../lib/model/index.js';
import { roundTo, uniformAt } from '../lib/reference/index.js';
import { describeDevices, expectThrow } from './helpers.js';

describeDevices('fillUniform', (device: Device) => {
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    it(`${dtype}: every element is the reference value rounded to the dtype, on a row range of a bigger tensor`, () => {
      using t = Tensor.full([300, 70], 7, { dtype, device });
      ops.fillUniform(t.narrow(0, 100, 150), -0.5, 2, 1234);
      const got = t.toArray();
      for (let r = 0; r < 300; ++r) {
        for (let c = 0; c < 70; ++c) {
          const i = (r - 100) * 70 + c;
          const want = r < 100 || r >= 250 ? 7 : roundTo(uniformAt(1234, i, -0.5, 2), dtype);
          if (got[r * 70 + c] !== want) expect.fail(`[${r}, ${c}]: got ${got[r * 70 + c]}, want ${want}`);
        }
      }
    });
  }

  it('is uniform in [low, high): bounds, mean, spread; another seed gives other values', () => {
    using t = Tensor.empty([1 << 18], { device });
    ops.fillUniform(t, -1e-3, 1e-3, 5);
    const a = t.toArray();
    let min = Infinity, max = -Infinity, sum = 0, sq = 0;
    for (const v of a) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
      sq += v * v;
    }
    const n = a.length;
    expect(min).to.be.at.least(-1e-3);
    expect(max).to.be.below(1e-3);
    expect(Math.abs(sum / n)).to.be.below(5 * (1e-3 / Math.sqrt(3)) / Math.sqrt(n));
    expect(Math.sqrt(sq / n)).to.be.closeTo(1e-3 / Math.sqrt(3), 1e-5);
    ops.fillUniform(t, -1e-3, 1e-3, 6);
    const b = t.toArray();
    let same = 0;
    for (let i = 0; i < n; ++i) if (a[i] === b[i]) same++;
    expect(same).to.be.below(n / 1000);
  });

  it('rejects bad arguments', () => {
    using t = Tensor.empty([4, 4], { device });
    expectThrow(() => ops.fillUniform(t, 1, 1, 0), RangeError, /fillUniform: need finite low < high, got low = 1, high = 1/);
    expectThrow(() => ops.fillUniform(t, 0, Infinity, 0), RangeError, /finite low < high/);
    expectThrow(() => ops.fillUniform(t, 0, 1, -1), RangeError, /seed must be an integer in \[0, 2\^32\), got -1/);
    expectThrow(() => ops.fillUniform(t.narrow(1, 0, 2), 0, 1, 0), RangeError, /fillUniform: out must be contiguous/);
    using ids = Tensor.empty([4], { dtype: 'int32', device });
    expectThrow(() => ops.fillUniform(ids, 0, 1, 0), TypeError, /fillUniform: out/);
  });
});

describe('dummy models', function () {
  it('are seeded: the same seed gives the same weights on every load, another seed others', async () => {
    const weights = async (seed: number) => {
      const m = await loadModel('dummy:stories15M', { device: 'cpu', seed });
      const w = [m.model.weights.embedding.narrow(0, 0, 4).toArray(), m.model.weights.layers[5]!.down.toArray().slice(0, 1000)];
      m.model.dispose();
      return w;
    };
    const [a, b, c] = [await weights(0), await weights(0), await weights(1)];
    expect(a).to.deep.equal(b);
    expect(a[0]).not.to.deep.equal(c[0]);
    for (const v of a[0]!) expect(Math.abs(v)).to.be.below(1e-3);
  });

  it('have the preset\'s real shape and a tokenizer of its vocabulary size; loading reports progress up to the total', async () => {
    const seen: [number, number][] = [];
    const m = await loadModel('dummy:stories15M', { device: 'cpu', dtype: 'bfloat16', onProgress: (done, total) => seen.push([done, total]) });
    expect(seen.length).to.be.greaterThan(10);
    for (let i = 1; i < seen.length; ++i) expect(seen[i]![0]).to.be.greaterThan(seen[i - 1]![0]);
    expect(seen.at(-1)).to.deep.equal([m.model.weightsBytes, m.model.weightsBytes]);
    try {
      expect(m.config).to.include({ vocabSize: 32000, hiddenSize: 288, intermediateSize: 768, numLayers: 6, numHeads: 6, numKvHeads: 6, ropeStyle: 'gptj' });
      expect(m.tokenizer.vocabSize).to.equal(32000);
      expect(m.model.weightsBytes).to.equal(2 * (32000 * 288 + 6 * (4 * 288 * 288 + 3 * 288 * 768 + 2 * 288) + 288));
    } finally {
      m.model.dispose();
    }
  });
});
