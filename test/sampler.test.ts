// The Sampler: the statistics each filter promises, seeded reproducibility, penalties on the right ids, logprobs,
// per-row params, and bad input. Its native row sampler (ops.sampleRows) is tested in ops/sampling.test.ts.
import { expect } from 'chai';
import { Tensor } from '../lib/index.js';
import { keptDistribution } from '../lib/reference/index.js';
import { resolveSamplingParams, type SamplingParams } from '../lib/sampling/params.js';
import { applyPenalties, Sampler, SamplingState } from '../lib/sampling/sampler.js';
import { expectThrow, prng, randn } from './helpers.js';

const draw = (sampler: Sampler, logits: Float32Array, params: SamplingParams, n: number): number[] => {
  const state = new SamplingState(params);
  const out: number[] = [];
  for (let i = 0; i < n; ++i) out.push(sampler.sample(logits, [state])[0]!);
  return out;
};

function counts(ids: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

function entropy(ids: number[]): number {
  let h = 0;
  for (const c of counts(ids).values()) h -= (c / ids.length) * Math.log(c / ids.length);
  return h;
}

describe('Sampler', function () {
  const rand = prng(7);
  const V = 1000;
  const logits = randn(rand, V, 2);

  it('greedy picks the argmax, the lowest id on ties, whatever the other filters say', () => {
    const row = new Float32Array(50).fill(-1);
    row[17] = 3;
    row[31] = 3;
    const s = new Sampler(50, { seed: 1 });
    for (const p of [{ temperature: 0 }, { temperature: 0, topK: 3, topP: 0.5, minP: 0.5 }])
      expect(s.sample(row, p)[0]).to.equal(17);
  });

  it('top-k never leaves the k best tokens, and reaches each of them', () => {
    const best5 = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!).slice(0, 5);
    const ids = draw(new Sampler(V, { seed: 3 }), logits, { temperature: 3, topK: 5 }, 3000);
    expect(new Set(ids)).to.deep.equal(new Set(best5));
  });

  it('top-p keeps the smallest most-likely set holding p of the mass, and samples it in proportion', () => {
    const p = { temperature: 1, topK: 0, topP: 0.6, minP: 0 };
    const { ids: kept, probs } = keptDistribution(logits, p);
    // The kept set is the top of the distribution, holds >= p, and would hold < p without its least likely token.
    const all = keptDistribution(logits, { ...p, topP: 1 });
    const prob = new Map(all.ids.map((id, i) => [id, all.probs[i]!]));
    const keptMass = kept.reduce((s, id) => s + prob.get(id)!, 0);
    const least = Math.min(...kept.map((id) => prob.get(id)!));
    expect(keptMass).to.be.at.least(0.6);
    expect(keptMass - least).to.be.below(0.6);
    const outside = all.ids.filter((id) => !kept.includes(id));
    expect(Math.max(...outside.map((id) => prob.get(id)!))).to.be.at.most(least);
    const n = 20000;
    const c = counts(draw(new Sampler(V, { seed: 4 }), logits, { temperature: 1, topP: 0.6 }, n));
    for (const id of c.keys()) expect(kept).to.include(id);
    // Each kept token's frequency within 5 standard deviations of its renormalised probability.
    kept.forEach((id, i) => {
      const q = probs[i]!;
      expect(Math.abs((c.get(id) ?? 0) / n - q)).to.be.below(5 * Math.sqrt((q * (1 - q)) / n) + 1e-3);
    });
  });

  it('min-p drops every token less than minP times as likely as the best', () => {
    const ids = draw(new Sampler(V, { seed: 5 }), logits, { temperature: 1, minP: 0.2 }, 3000);
    const max = Math.max(...logits);
    for (const id of ids) expect(Math.exp(logits[id]! - max)).to.be.at.least(0.2 * (1 - 1e-6));
  });

  it('a higher temperature gives more diverse tokens', () => {
    const h = [0.3, 1, 3].map((t) => entropy(draw(new Sampler(V, { seed: 6 }), logits, { temperature: t }, 4000)));
    expect(h[0]).to.be.below(h[1]!);
    expect(h[1]).to.be.below(h[2]!);
  });

  it('the same seed gives the same tokens; another seed other tokens', () => {
    const a = draw(new Sampler(V), logits, { temperature: 1, seed: 42 }, 200);
    const b = draw(new Sampler(V), logits, { temperature: 1, seed: 42 }, 200);
    const c = draw(new Sampler(V), logits, { temperature: 1, seed: 43 }, 200);
    expect(a).to.deep.equal(b);
    expect(a).not.to.deep.equal(c);
    // A seeded row does not depend on its neighbours in the batch.
    const s1 = new SamplingState({ temperature: 1, seed: 42 });
    const other = new SamplingState({ temperature: 1 });
    const batch = new Float32Array(2 * V);
    batch.set(logits, 0);
    batch.set(logits, V);
    const mixed: number[] = [];
    for (let i = 0; i < 200; ++i) mixed.push(new Sampler(V).sample(batch, [other, s1])[1]!);
    expect(mixed).to.deep.equal(a);
  });

  it('penalties change exactly the ids they should', () => {
    const row = Float32Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? 2 : -2));
    const s = new SamplingState({ repetitionPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25 }, [0, 1]);
    [4, 4, 5].forEach((id) => s.append(id));
    const out = Float32Array.from(row);
    applyPenalties(out, s);
    const expected = Float32Array.from(row);
    // repetition over prompt and output ids: positive / 2, negative * 2
    for (const id of [0, 4]) expected[id] = 2 / 2;
    for (const id of [1, 5]) expected[id] = -2 * 2;
    // presence once, frequency per occurrence, output ids only
    expected[4] = expected[4]! - 0.5 - 2 * 0.25;
    expected[5] = expected[5]! - 0.5 - 1 * 0.25;
    expect(Array.from(out)).to.deep.equal(Array.from(expected));
    // Through the sampler: a strong repetition penalty on the greedy choice picks the runner-up.
    const l = Float32Array.of(1, 5, 4, 0);
    const st = new SamplingState({ temperature: 0, repetitionPenalty: 10 }, [1]);
    expect(new Sampler(4).sample(l, [st])[0]).to.equal(2);
    expect(Array.from(l)).to.deep.equal([1, 5, 4, 0]); // the caller's logits are not modified
  });

  it('returns logprobs of the raw logits: the sampled token and the n best, most likely first', () => {
    const t = Tensor.fromArray(logits, [1, V]);
    const r = new Sampler(V, { seed: 8 }).sampleWithLogprobs(t, {
      temperature: 1,
      logprobs: 5,
      repetitionPenalty: 1.5,
    });
    t.dispose();
    const max = Math.max(...logits);
    const logZ = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
    const lp = r.logprobs[0]!;
    expect(lp.token).to.equal(r.tokens[0]);
    expect(lp.logprob).to.be.closeTo(logits[lp.token]! - logZ, 1e-5);
    const best = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!).slice(0, 5);
    expect(lp.top.map((x) => x.token)).to.deep.equal(best);
    lp.top.forEach((x) => expect(x.logprob).to.be.closeTo(logits[x.token]! - logZ, 1e-5));
  });

  it('takes per-row params in one batch', () => {
    const batch = new Float32Array(3 * V);
    for (let r = 0; r < 3; ++r) batch.set(logits, r * V);
    const argmax = logits.indexOf(Math.max(...logits));
    const tokens = new Sampler(V, { seed: 9 }).sample(batch, [
      { temperature: 0 },
      { temperature: 5, topK: 1 },
      { temperature: 1, seed: 42 },
    ]);
    expect(tokens[0]).to.equal(argmax);
    expect(tokens[1]).to.equal(argmax);
    expect(tokens[2]).to.equal(draw(new Sampler(V), logits, { temperature: 1, seed: 42 }, 1)[0]);
  });

  it('rejects bad params and bad logits with errors that name them', () => {
    const s = new Sampler(V);
    expectThrow(
      () => resolveSamplingParams({ temperature: -1 }),
      RangeError,
      /temperature must be a finite number >= 0, got -1/,
    );
    expectThrow(() => resolveSamplingParams({ topP: 0 }), RangeError, /topP must be in \(0, 1\], got 0/);
    expectThrow(() => resolveSamplingParams({ topK: 2.5 }), RangeError, /topK must be an integer >= -1/);
    expectThrow(() => resolveSamplingParams({ minP: 2 }), RangeError, /minP must be in \[0, 1\]/);
    expectThrow(() => resolveSamplingParams({ maxTokens: 0 }), RangeError, /maxTokens must be an integer >= 1/);
    expectThrow(
      () => resolveSamplingParams({ temperature: '1' as never }),
      TypeError,
      /temperature must be a number, got string/,
    );
    expectThrow(() => resolveSamplingParams({ stop: [''] }), TypeError, /stop must be a non-empty string/);
    expectThrow(
      () => resolveSamplingParams({ stopTokenIds: [5, 2000] }, 1000),
      RangeError,
      /stopTokenIds must be token ids in \[0, 1000\)/,
    );
    expectThrow(() => resolveSamplingParams({ logprobs: 21 }), RangeError, /logprobs must be an integer in \[0, 20\]/);
    expectThrow(() => s.sample(new Float32Array(V + 1), {}), RangeError, /not a multiple of vocabSize 1000/);
    expectThrow(() => s.sample([1, 2] as never, {}), TypeError, /logits must be a Tensor or a Float32Array/);
    expectThrow(() => s.sample(new Float32Array(2 * V), [{}]), RangeError, /rows has 1 entries for 2 rows of logits/);
    const bad = Float32Array.from(logits);
    bad[7] = NaN;
    expectThrow(() => s.sample(bad, {}), RangeError, /logits\[0, 7\] = nan/i);
    expect(() => new Sampler(0)).to.throw(RangeError, /vocabSize must be a positive integer/);
  });
});
