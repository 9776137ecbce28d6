// Phi-3's LongRoPE: how a config.json and a GGUF file give it, and the cos/sin table it makes (the tiny models'
// logits against llama.cpp are test/families.test.ts's phi3-longrope-* sets).
import { expect } from 'chai';
import { configFromHf, configToHf } from '../lib/model/config-hf.js';
import { ropeCosSin } from '../lib/rope.js';
import { FAMILY_CONFIGS } from './family-models.js';

const short = Array.from({ length: 8 }, (_, i) => 1 + i / 10);
const long = Array.from({ length: 8 }, (_, i) => 2 + i);

describe('LongRoPE (Phi-3)', () => {
  const phi3 = configToHf(FAMILY_CONFIGS.phi3);

  it('a Phi-3.5 config.json: the original context at the top level, the attention factor from the contexts', () => {
    const c = configFromHf(
      {
        ...phi3,
        max_position_embeddings: 131072,
        original_max_position_embeddings: 4096,
        rope_scaling: { type: 'longrope', short_factor: short, long_factor: long },
      },
      'config.json',
    );
    const s = c.ropeScaling!;
    if (s.type !== 'longrope') throw new Error(`expected longrope, got ${s.type}`);
    expect([...s.shortFactors]).to.deep.equal([...Float32Array.from(short)]);
    expect([...s.longFactors]).to.deep.equal(long);
    expect(s.originalMaxPositionEmbeddings).to.equal(4096);
    // Hugging Face's default: sqrt(1 + ln(131072 / 4096) / ln(4096))
    expect(s.attentionFactor).to.be.closeTo(Math.sqrt(1 + Math.log(32) / Math.log(4096)), 1e-12);
    // the legacy name "su", an attention factor given, and the round trip through configToHf
    const su = configFromHf(
      {
        ...phi3,
        rope_scaling: { type: 'su', short_factor: short, long_factor: long, attention_factor: 1.5 },
      },
      'config.json',
    ).ropeScaling!;
    expect(su.type === 'longrope' && su.attentionFactor).to.equal(1.5);
    expect(su.type === 'longrope' && su.originalMaxPositionEmbeddings).to.equal(phi3['max_position_embeddings']);
    const back = configFromHf(
      { ...phi3, rope_scaling: configToHf({ ...FAMILY_CONFIGS.phi3, ropeScaling: su })['rope_scaling'] },
      'x',
    );
    expect(back.ropeScaling).to.deep.equal(su);
  });

  it('the table: positions below the original context divide by the short factors, the rest by the long ones', () => {
    const [rot, base, original, attention] = [16, 10000, 5, 1.25];
    const scaling = {
      type: 'longrope' as const,
      shortFactors: Float32Array.from(short),
      longFactors: Float32Array.from(long),
      originalMaxPositionEmbeddings: original,
      attentionFactor: attention,
    };
    const table = ropeCosSin(rot, 12, base, scaling);
    for (let p = 0; p < 12; ++p)
      for (let i = 0; i < rot / 2; ++i) {
        const factor = (p < original ? short : long)[i]!;
        const angle = p / (factor * base ** ((2 * i) / rot));
        expect(table[p * rot + i], `cos, position ${p}, frequency ${i}`).to.be.closeTo(
          attention * Math.cos(angle),
          2e-5,
        );
        expect(table[p * rot + rot / 2 + i], `sin, position ${p}`).to.be.closeTo(attention * Math.sin(angle), 2e-5);
      }
  });

  it('bad factors: wrong count, not positive, not a list', () => {
    const read = (rs: Record<string, unknown>) => () => configFromHf({ ...phi3, rope_scaling: rs }, 'config.json');
    expect(read({ type: 'longrope', short_factor: short.slice(1), long_factor: long })).to.throw(
      /RoPE shortFactors must be 8 positive numbers \(rotaryDim \/ 2\), got 7/,
    );
    expect(read({ type: 'longrope', short_factor: short, long_factor: [...long.slice(1), -1] })).to.throw(
      /rope_scaling.long_factor must be a list of positive numbers/,
    );
    expect(read({ type: 'longrope', short_factor: 'x', long_factor: long })).to.throw(
      /rope_scaling.short_factor must be a list of positive numbers, got "x"/,
    );
    expect(read({ type: 'longrope', short_factor: short, long_factor: long, attention_factor: 0 })).to.throw(
      /rope_scaling.attention_factor must be a positive number, got 0/,
    );
  });
});
