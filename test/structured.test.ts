// Structured output: which JSON Schemas a request may name (and the words a refusal uses), the constraints through
// the engine on a random-weight model (the mask, not the model, makes the output valid), the logit processors, and
// the JSON-Schema-Test-Suite's counts.
import { expect } from 'chai';
import { EngineCore, generate } from '../lib/engine/index.js';
import { type LoadedModel, loadModel } from '../lib/model/index.js';
import { resolveSamplingParams } from '../lib/sampling/params.js';
import { applyLogitProcessors, SamplingState } from '../lib/sampling/sampler.js';
import { ebnfLiteral, resolveStructured } from '../lib/structured/constraint.js';
import { bitmaskWords, checkConstraint, GrammarCompiler } from '../lib/structured/grammars.js';
import { checkSchema } from '../lib/structured/schema.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Device } from '../lib/index.js';
import { syntheticTokenizer } from '../lib/tokenizer/synthetic.js';
import { describeDevices, expectReject, expectThrow } from './helpers.js';
import { TINY_CONFIG, writeTinyHfModel } from './tiny-models.js';
import { bpeVocabularies, FAMILY_CONFIGS, familyWeights, writeFamilyGguf } from './family-models.js';
import { loadTokenizer } from '../lib/model/index.js';
import { HfTokenizer } from '../lib/tokenizer/hf.js';
import { SentencePieceTokenizer } from '../lib/tokenizer/sentencepiece.js';
import type { Tokenizer } from '../lib/tokenizer/tokenizer.js';
import { sharedModels, skipBecause } from './helpers.js';
import { practiceSchemas, runSchemaSuite } from './schema-suite.js';

describe('structured output: the JSON Schemas it takes', () => {
  const refused: [string, unknown, RegExp][] = [
    [
      'multipleOf',
      { type: 'object', properties: { n: { type: 'integer', multipleOf: 3 } } },
      /#\/properties\/n: "multipleOf" is not supported/,
    ],
    ['not', { not: { type: 'string' } }, /#: "not" is not supported/],
    ['uniqueItems', { type: 'array', uniqueItems: true }, /"uniqueItems" is not supported/],
    [
      'a remote $ref',
      { $ref: 'http://example.com/s.json' },
      /"\$ref" "http:\/\/example.com\/s.json": only references within/,
    ],
    ['a $ref to nothing', { $ref: '#/$defs/missing' }, /"\$ref" "#\/\$defs\/missing" names nothing/],
    ['an unknown format', { type: 'string', format: 'isbn' }, /"format" "isbn" is not supported/],
    ['a format its grammar gets wrong', { type: 'string', format: 'uri' }, /"format" "uri" is not supported/],
    ['an unknown type', { type: 'text' }, /"type" "text" is unknown/],
    ['overlapping oneOf', { oneOf: [{ type: 'integer' }, { type: 'number' }] }, /"oneOf" whose branches may overlap/],
    [
      'draft 4 boolean exclusiveMinimum',
      { type: 'number', minimum: 1, exclusiveMinimum: true },
      /the draft-4 boolean form/,
    ],
    ['keywords of several types without type', { minLength: 2, maximum: 3 }, /several types \(number, string\)/],
    ['allOf branches that disagree', { allOf: [{ type: 'integer' }, { type: 'string' }] }, /"allOf\/1\/type" differs/],
  ];
  for (const [what, schema, pattern] of refused)
    it(`refuses ${what}, naming the keyword and where it is`, () => {
      expectThrow(() => resolveStructured({ guidedJson: schema as Record<string, unknown> }), TypeError, pattern);
    });

  it('merges allOf, hands a base schema to each anyOf branch, turns draft 4 tuples into prefixItems', () => {
    expect(
      checkSchema({
        allOf: [
          { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] },
          { properties: { b: { type: 'string' } }, required: ['b'] },
        ],
      }),
    ).to.deep.equal({
      type: 'object',
      properties: { a: { type: 'integer' }, b: { type: 'string' } },
      required: ['a', 'b'],
    });
    expect(checkSchema({ type: 'string', anyOf: [{ maxLength: 2 }, { minLength: 4 }] })).to.deep.equal({
      anyOf: [
        { type: 'string', pattern: '^[^"\\\\\\x00-\\x1f]{0,2}$' },
        { type: 'string', pattern: '^[^"\\\\\\x00-\\x1f]{4,}$' },
      ],
    });
    expect(checkSchema({ items: [{ type: 'integer' }], additionalItems: false })).to.deep.equal({
      prefixItems: [{ type: 'integer' }],
      items: false,
      type: 'array',
    });
  });

  it('gives a schema the type its keywords constrain (its outputs are then valid), keeps annotations out', () => {
    expect(checkSchema({ maximum: 3, description: 'small' })).to.deep.equal({ maximum: 3, type: 'integer' });
    expect(checkSchema({ properties: { a: true } })).to.deep.equal({ properties: { a: true }, type: 'object' });
    expect(checkSchema({ enum: [1, 'a'] })).to.deep.equal({ enum: [1, 'a'] });
  });

  it('works around xgrammar 0.1.27: bounded numbers as integers, string lengths as patterns', () => {
    // its fractional ranges let 30.8 through "maximum": 30; its length grammar lets raw control characters in
    expect(checkSchema({ type: 'number', minimum: -2.5, exclusiveMaximum: 30 })).to.deep.equal({
      type: 'integer',
      minimum: -2,
      maximum: 29,
    });
    expectThrow(
      () => checkSchema({ type: 'number', minimum: 0.2, maximum: 0.8 }),
      TypeError,
      /no integer lies within the bounds/,
    );
    expect(checkSchema({ type: 'string', minLength: 1, maxLength: 3 })).to.deep.equal({
      type: 'string',
      pattern: '^[^"\\\\\\x00-\\x1f]{1,3}$',
    });
    expectThrow(
      () => checkSchema({ type: 'string', pattern: '^a+$', maxLength: 3 }),
      TypeError,
      /minLength \/ maxLength beside "pattern" are not supported/,
    );
  });

  it('keeps the output valid UTF-8: no surrogate, overlong form or code point past U+10FFFF', async () => {
    const tok = syntheticTokenizer(1000, { bosTokenId: 1, eosTokenIds: [2] });
    const grammars = new GrammarCompiler(tok, 1000, [2]);
    const c = resolveStructured({ guidedJson: { type: 'string', maxLength: 2 } })!;
    const quote = (await tok.encode('"', { addSpecialTokens: false })).at(-1)!;
    const byte = (b: number) => 3 + b; // the synthetic vocabulary's <0xNN> pieces
    const mask = new Int32Array(bitmaskWords(1000));
    const walk = async (bytes: number[]) => {
      const m = await grammars.matcher(c);
      try {
        for (const t of [quote, ...bytes.map(byte), quote]) {
          m.fillBitmask(mask, 0);
          if (((mask[t >> 5]! >>> (t & 31)) & 1) === 0 || !m.accept(t)) return false;
        }
        return true;
      } finally {
        m.dispose();
      }
    };
    expect(await walk([0xc3, 0xa9, 0xe2, 0x81, 0x89]), 'é⁉').to.equal(true);
    for (const bad of [[0xed, 0xa0, 0x80], [0xc0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff], [0x80]])
      expect(await walk(bad), bad.map((b) => b.toString(16)).join(' ')).to.equal(false);
  });

  it('takes one constraint per request: two are a TypeError naming both; responseFormat text is none', () => {
    expectThrow(
      () => resolveSamplingParams({ guidedJson: { type: 'string' }, guidedRegex: 'a+' }),
      TypeError,
      /name one constraint, got guidedJson and guidedRegex/,
    );
    expect(resolveSamplingParams({ responseFormat: { type: 'text' } }).structured).to.equal(null);
    expect(resolveSamplingParams({ responseFormat: { type: 'json_object' } }).structured?.kind).to.equal('json_object');
    expect(resolveSamplingParams({ structuredOutputs: { choice: ['a', 'b'] } }).structured?.kind).to.equal('choice');
    expectThrow(() => resolveSamplingParams({ guidedChoice: [] }), TypeError, /guidedChoice must be a non-empty array/);
    expectThrow(() => resolveSamplingParams({ guidedGrammar: 'start: "a"' }), TypeError, /Lark grammars are not/);
    expectThrow(() => resolveSamplingParams({ guidedJson: '{"type": ' }), TypeError, /guidedJson is not valid JSON/);
  });

  it('a bad regex or grammar is a TypeError in xgrammar words: what and where', async () => {
    await expectReject(
      checkConstraint(resolveStructured({ guidedRegex: '(ab' })!),
      TypeError,
      /regex: Regex parsing error at position \d+: The parenthesis is not closed/,
    );
    await expectReject(
      checkConstraint(resolveStructured({ guidedGrammar: 'root ::= "a" | b' })!),
      TypeError,
      /grammar: EBNF parser error at line 1, column 16: Rule "b" is not defined/,
    );
  });

  it('the logit processors check their arguments', () => {
    expectThrow(
      () => resolveSamplingParams({ logitBias: { x: 1 } }, 100),
      RangeError,
      /logitBias key "x" is not a token id/,
    );
    expectThrow(
      () => resolveSamplingParams({ logitBias: { 5: 101 } }, 100),
      RangeError,
      /logitBias\[5\] must be a number in \[-100, 100\]/,
    );
    expectThrow(
      () => resolveSamplingParams({ allowedTokenIds: [100] }, 100),
      RangeError,
      /allowedTokenIds must be .* in \[0, 100\)/,
    );
    expectThrow(() => resolveSamplingParams({ badWords: [' '] }), TypeError, /badWords must be an array of non-blank/);
  });

  it('quotes a choice as an EBNF literal', () => {
    expect(ebnfLiteral('a"b\\c\nd é')).to.equal('"a\\"b\\\\c\\x0ad é"');
  });
});

describe('structured output in the engine (dummy:stories15M: random weights)', function () {
  let m: LoadedModel;
  before(async () => {
    m = await loadModel('dummy:stories15M', { device: 'cpu' });
  });
  after(() => m?.model.dispose());
  const eos = () => [...m.config.eosTokenIds, ...m.tokenizer.eosTokenIds];

  it('a JSON schema: every output parses and fits; unconstrained requests beside them are unchanged', async () => {
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 8 },
        age: { type: 'integer', minimum: 0, maximum: 120 },
        kind: { enum: ['cat', 'dog'] },
        tags: { type: 'array', items: { type: 'boolean' }, maxItems: 3 },
      },
      required: ['name', 'age', 'kind', 'tags'],
    };
    const [alone] = await generate(m, 'Hello', { temperature: 0, maxTokens: 12 });
    const params = [
      { temperature: 0, maxTokens: 12 },
      ...[1, 2, 3, 4].map((seed) => ({ temperature: 1, seed, maxTokens: 120, guidedJson: schema })),
      { temperature: 0, maxTokens: 120, guidedJson: schema },
    ];
    const rs = await generate(
      m,
      params.map(() => 'Hello'),
      params,
    );
    expect(rs[0]!.tokenIds).to.deep.equal(alone!.tokenIds);
    for (const r of rs.slice(1)) {
      expect(r.finishReason, r.text).to.equal('stop');
      expect(eos(), 'the end token, allowed only once the object closed').to.include(r.tokenIds.at(-1));
      const v = JSON.parse(r.text) as { name: string; age: number; kind: string; tags: boolean[] };
      expect(Object.keys(v)).to.deep.equal(['name', 'age', 'kind', 'tags']);
      expect([...v.name].length, 'code points, as JSON Schema counts').to.be.at.most(8);
      expect(Number.isInteger(v.age) && v.age >= 0 && v.age <= 120, String(v.age)).to.equal(true);
      expect(['cat', 'dog']).to.include(v.kind);
      expect(v.tags.length).to.be.at.most(3);
      for (const t of v.tags) expect(t).to.be.a('boolean');
    }
  });

  it('a choice, a regex, a grammar, any JSON object', async () => {
    const grammar = 'root ::= "(" num (" + " num)* ")"\nnum ::= [1-9] [0-9]?';
    const params = [
      { temperature: 1, seed: 1, maxTokens: 40, guidedChoice: ['red', 'green', 'blue sky'] },
      { temperature: 1, seed: 2, maxTokens: 40, guidedRegex: '[a-f]{3}-[0-9]{2,4}' },
      { temperature: 1, seed: 3, maxTokens: 60, guidedGrammar: grammar },
      { temperature: 1, seed: 4, maxTokens: 200, responseFormat: { type: 'json_object' as const } },
    ];
    const rs = await generate(
      m,
      params.map(() => 'Hi'),
      params,
    );
    expect(['red', 'green', 'blue sky']).to.include(rs[0]!.text);
    expect(rs[1]!.text).to.match(/^[a-f]{3}-[0-9]{2,4}$/);
    if (rs[2]!.finishReason === 'stop') expect(rs[2]!.text).to.match(/^\([1-9][0-9]?( \+ [1-9][0-9]?)*\)$/);
    else expect(rs[2]!.text).to.match(/^\([1-9][0-9]?( \+ [1-9][0-9]?)*( \+ [1-9]?)?$/);
    if (rs[3]!.finishReason === 'stop') expect(JSON.parse(rs[3]!.text)).to.be.an('object');
    else expect(rs[3]!.text.startsWith('{')).to.equal(true);
    for (const r of rs.slice(0, 2)) expect(r.finishReason).to.equal('stop');
  });

  it('ends at the grammar end under ignoreEos, and at a stop id the grammar may end with', async () => {
    const [r] = await generate(m, 'Hi', { temperature: 0, maxTokens: 40, ignoreEos: true, guidedChoice: ['yes'] });
    expect(r!.text).to.equal('yes');
    expect(r!.finishReason).to.equal('stop');
    const stopId = 5;
    const [s] = await generate(m, 'Hi', { temperature: 0, maxTokens: 40, stopTokenIds: [stopId], guidedRegex: 'ab' });
    expect(s!.text).to.equal('ab');
    expect(s!.finishReason).to.equal('stop');
  });

  it('logit_bias and allowed_token_ids change what is sampled', async () => {
    const [free] = await generate(m, 'Hello', { temperature: 0, maxTokens: 8 });
    const first = free!.tokenIds[0]!;
    const [biased] = await generate(m, 'Hello', { temperature: 0, maxTokens: 8, logitBias: { [first]: -100 } });
    expect(biased!.tokenIds[0]).to.not.equal(first);
    const [pushed] = await generate(m, 'Hello', { temperature: 0, maxTokens: 8, logitBias: { 1234: 100 } });
    expect(pushed!.tokenIds).to.deep.equal(new Array(8).fill(1234));
    const [allowed] = await generate(m, 'Hello', {
      temperature: 1,
      seed: 3,
      maxTokens: 16,
      allowedTokenIds: [700, 701],
    });
    for (const t of allowed!.tokenIds) expect([700, 701]).to.include(t);
  });

  it('bad_words: tokenised as vLLM does; a last token banned where the output ends with the rest', async () => {
    const core = EngineCore.fromLoaded(m, { maxModelLen: 64 });
    try {
      const params = resolveSamplingParams({ badWords: ['ko'] }, m.config.vocabSize);
      const prepared = await core.prepare({ requestId: 'x', promptTokenIds: [1], params });
      const alone = await m.tokenizer.encode('ko', { addSpecialTokens: false });
      expect(prepared.badWordsTokenIds[0]).to.deep.equal(alone);
    } finally {
      core.dispose();
    }
    const state = new SamplingState({ badWords: ['x'] }, [], 10);
    state.badWordsTokenIds = [[3, 4], [7]];
    const row = () => Float32Array.from({ length: 10 }, (_, i) => i);
    const r1 = row();
    applyLogitProcessors(r1, state.params, state);
    expect(Array.from(r1)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, -Infinity, 8, 9]);
    state.append(3);
    const r2 = row();
    applyLogitProcessors(r2, state.params, state);
    expect(r2[4]).to.equal(-Infinity);
    expect(r2[3]).to.equal(3);
  });

  it('an invalid grammar fails only its own request, with a TypeError', async () => {
    await expectReject(
      generate(m, 'Hi', { maxTokens: 4, guidedGrammar: 'root ::= missing' }),
      TypeError,
      /Rule "missing" is not defined/,
    );
  });

  it('the JSON-Schema-Test-Suite (draft 4): every finished output validates', async function () {
    this.timeout(600_000);
    const r = await runSchemaSuite(m, [1, 2], 64);
    process.stderr.write(
      `      schema suite: ${r.accepted} of ${r.schemas} schemas accepted; ${r.runs} runs, ${r.finished} finished, ` +
        `${r.valid} valid\n`,
    );
    expect(r.invalid, JSON.stringify(r.invalid.slice(0, 3))).to.deep.equal([]);
    expect(r.valid).to.equal(r.finished);
    expect(r.accepted, 'schemas accepted').to.be.at.least(38);
    expect(r.finished, 'runs that finished within 64 tokens').to.be.at.least(r.runs / 2);
  });

  it('schemas as given in practice (formats, bounds, $defs, tool calls): every output validates', async function () {
    this.timeout(600_000);
    const r = await runSchemaSuite(m, [1, 2, 3], 160, practiceSchemas());
    expect(r.accepted, JSON.stringify(r.refused)).to.equal(r.schemas);
    expect(r.invalid, JSON.stringify(r.invalid.slice(0, 3))).to.deep.equal([]);
    expect(r.finished, 'runs that finished within 160 tokens').to.be.at.least(r.runs / 2);
  });
});

describeDevices('structured output on the device (a tiny Hugging Face model: tokenizer.json)', (device: Device) => {
  let m: LoadedModel;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvllm-structured-'));
    const tok = syntheticTokenizer(TINY_CONFIG.vocabSize, { bosTokenId: 1, eosTokenIds: [2] }).vocabulary();
    writeTinyHfModel(dir, { seed: 3, pieces: [...tok.pieces], scores: tok.scores });
    m = await loadModel(dir, { device, dtype: 'float32' });
  });
  after(() => m?.model.dispose());

  it('the logits are masked where they are: constrained rows valid, batched with a free one', async () => {
    const schema = {
      type: 'object',
      properties: { n: { type: 'integer' }, ok: { type: 'boolean' } },
      required: ['n', 'ok'],
    };
    const params = [
      { temperature: 0, maxTokens: 40, guidedJson: schema },
      { temperature: 1, seed: 9, maxTokens: 20, guidedChoice: ['up', 'down'] },
      { temperature: 0, maxTokens: 6 },
    ];
    const rs = await generate(
      m,
      params.map(() => 'Hi'),
      params,
    );
    expect(rs[0]!.finishReason, rs[0]!.text).to.equal('stop');
    const v = JSON.parse(rs[0]!.text) as { n: number; ok: boolean };
    expect(Number.isInteger(v.n) && typeof v.ok === 'boolean', rs[0]!.text).to.equal(true);
    expect(['up', 'down']).to.include(rs[1]!.text);
    const [free] = await generate(m, 'Hi', params[2]);
    expect(rs[2]!.tokenIds).to.deep.equal(free!.tokenIds);
  });
});

describe('the grammar engine reads each vocabulary as its tokenizer decodes it', () => {
  const text = '{"name": "h\u00e9llo \u65e5\u672c \u{1F600}", "n": [1, 2.5]}';
  const work = mkdtempSync(join(tmpdir(), 'mvllm-vocab-'));
  const kinds: [string, () => Promise<Tokenizer | null> | Tokenizer | null][] = [
    ['a SentencePiece vocabulary (byte fallback)', () => syntheticTokenizer(4000, { bosTokenId: 1, eosTokenIds: [2] })],
    [
      'a tokenizer.json (byte fallback, "▁")',
      () => {
        const tok = syntheticTokenizer(TINY_CONFIG.vocabSize, { bosTokenId: 1, eosTokenIds: [2] }).vocabulary();
        const dir = join(work, 'hf');
        writeTinyHfModel(dir, { pieces: [...tok.pieces], scores: tok.scores });
        return HfTokenizer.fromDir(dir);
      },
    ],
    [
      'a GGUF byte-level BPE vocabulary (GPT-2 bytes)',
      async () => {
        const path = join(work, 'qwen2.gguf');
        writeFamilyGguf(path, FAMILY_CONFIGS.qwen2, familyWeights(FAMILY_CONFIGS.qwen2, 1), bpeVocabularies().qwen2);
        return (await loadTokenizer(path)).tokenizer;
      },
    ],
    [
      "Llama 2's vocabulary (llama2.c's tokenizer.bin)",
      () => {
        const models = sharedModels();
        return models
          ? SentencePieceTokenizer.fromLlama2c(join(models, 'llama2-tokenizer', 'tokenizer.bin'), 32000)
          : null;
      },
    ],
  ];
  for (const [what, make] of kinds)
    it(`${what}: the tokens of a JSON text walk its regex, and end only at its end`, async function () {
      const tok = await make();
      if (tok === null) skipBecause(this, '../shared/models/llama2-tokenizer is absent');
      const ids = await tok.encode(text, { addSpecialTokens: false });
      expect(await tok.decode(ids)).to.match(/^ ?\{"name"/);
      const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const grammars = new GrammarCompiler(tok, tok.vocabSize, tok.eosTokenIds);
      const m = await grammars.matcher(resolveStructured({ guidedRegex: ` ?${escaped}` })!);
      const mask = new Int32Array(bitmaskWords(tok.vocabSize));
      const allows = (t: number) => ((mask[t >> 5]! >>> (t & 31)) & 1) === 1;
      const eos = tok.eosTokenIds[0]!;
      try {
        for (const [i, t] of ids.entries()) {
          m.fillBitmask(mask, 0);
          expect(allows(t), `token ${i} (${JSON.stringify(await tok.decode([t]))}) allowed`).to.equal(true);
          expect(allows(eos), `the end token before the text ends (token ${i})`).to.equal(false);
          expect(m.accept(t)).to.equal(true);
        }
        m.fillBitmask(mask, 0);
        expect(allows(eos), 'the end token at the end').to.equal(true);
        expect(m.accept(eos)).to.equal(true);
        expect(m.terminated).to.equal(true);
      } finally {
        m.dispose();
      }
    });
});
