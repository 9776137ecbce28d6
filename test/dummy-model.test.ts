// Dummy models (dummy:<preset>): seeded random weights of a real shape, made on the device by ops.fillUniform.
import { expect } from 'chai';
import { loadModel } from '../lib/model/index.js';
import { PackedWeight } from '../lib/model/linear-weight.js';

describe('dummy models', function () {
  it('are seeded: the same seed gives the same weights on every load, another seed others', async () => {
    const weights = async (seed: number) => {
      const m = await loadModel('dummy:stories15M', { device: 'cpu', seed });
      const { embedding, layers } = m.model.weights;
      // on the CPU the matrices are packed for its GEMM (PackedWeight), the tied embedding too
      const down = layers[5]!.down;
      if (!(embedding instanceof PackedWeight) || !(down instanceof PackedWeight)) throw new Error('packed weights');
      const w = [embedding.data.toArray().slice(0, 4 * 288 * 16), down.data.toArray().slice(0, 1000)];
      m.model.dispose();
      return w;
    };
    const [a, b, c] = [await weights(0), await weights(0), await weights(1)];
    expect(a).to.deep.equal(b);
    expect(a[0]).not.to.deep.equal(c[0]);
    for (const v of a[0]!) expect(Math.abs(v)).to.be.below(1e-3);
  });

  it(
    "have the preset's real shape and a tokenizer of its vocabulary size; loading reports progress up to the " +
      'total',
    async () => {
      const seen: [number, number][] = [];
      const m = await loadModel('dummy:stories15M', {
        device: 'cpu',
        dtype: 'bfloat16',
        onProgress: (done, total) => seen.push([done, total]),
      });
      expect(seen.length).to.be.greaterThan(10);
      for (let i = 1; i < seen.length; ++i) expect(seen[i]![0]).to.be.greaterThan(seen[i - 1]![0]);
      expect(seen.at(-1)).to.deep.equal([m.model.weightsBytes, m.model.weightsBytes]);
      try {
        expect(m.config).to.include({
          vocabSize: 32000,
          hiddenSize: 288,
          intermediateSize: 768,
          numLayers: 6,
          numHeads: 6,
          numKvHeads: 6,
          ropeStyle: 'gptj',
        });
        expect(m.tokenizer.vocabSize).to.equal(32000);
        expect(m.model.weightsBytes).to.equal(2 * (32000 * 288 + 6 * (4 * 288 * 288 + 3 * 288 * 768 + 2 * 288) + 288));
      } finally {
        m.model.dispose();
      }
    },
  );
});
