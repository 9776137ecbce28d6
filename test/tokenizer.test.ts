// SentencePiece BPE (llama2.c tok*.bin, GGUF vocabularies, the dummy models' synthetic one), incremental
// detokenization, and chat templates.
import { join } from 'node:path';
import { expect } from 'chai';
import { MiniVllmError } from '../lib/index.js';
import { openGguf } from '../lib/formats/gguf.js';
import { renderChatTemplate } from '../lib/tokenizer/chat-template.js';
import { IncrementalDetokenizer } from '../lib/tokenizer/detokenizer.js';
import { SentencePieceTokenizer } from '../lib/tokenizer/sentencepiece.js';
import { syntheticTokenizer } from '../lib/tokenizer/synthetic.js';
import type { Tokenizer } from '../lib/tokenizer/tokenizer.js';
import { expectThrow, sharedModels, skipBecause } from './helpers.js';

const models = sharedModels();
const TEXTS = [
  'Once upon a time',
  'Hello world',
  'a\nb\n\nc',
  'naïve café — 日本語 🙂🙃',
  '  leading and trailing  ',
  'x',
];

/** Streams the output ids one by one through an incremental detokenizer and checks every delta. */
async function streamCheck(tok: Tokenizer, prompt: number[], output: number[]): Promise<void> {
  const d = new IncrementalDetokenizer(tok, prompt);
  let text = '';
  for (const id of output) {
    const delta = await d.push(id);
    expect(delta, 'no replacement character mid-stream').not.to.include('\uFFFD');
    text += delta;
  }
  text += await d.flush();
  const full = await tok.decode([...prompt, ...output]);
  const head = await tok.decode(prompt);
  expect(head + text).to.equal(full);
}

describe('SentencePiece BPE tokenizer', function () {
  describe('the Llama 2 vocabulary (32000 tokens, llama2.c format)', function () {
    let tok: SentencePieceTokenizer;
    before(function () {
      if (!models) skipBecause(this, '../shared/models/llama2-tokenizer is absent');
      tok = SentencePieceTokenizer.fromLlama2c(join(models, 'llama2-tokenizer', 'tokenizer.bin'), 32000);
    });

    it("encodes known prompts to Llama 2's ids", () => {
      expect(tok.encodeSync('Hello world')).to.deep.equal([1, 15043, 3186]);
      expect(tok.encodeSync('Once upon a time')).to.deep.equal([1, 9038, 2501, 263, 931]);
      expect(tok.encodeSync('Hello world', { addSpecialTokens: false })).to.deep.equal([15043, 3186]);
      expect(tok.encodeSync('')).to.deep.equal([1]);
    });

    it('falls back to byte tokens for characters outside the vocabulary and decodes them back', () => {
      const ids = tok.encodeSync('🙂');
      // BOS, the "▁" piece, then U+1F642's four UTF-8 bytes as <0xF0> <0x9F> <0x99> <0x82> (ids = byte + 3)
      expect(ids).to.deep.equal([1, 29871, 0xf0 + 3, 0x9f + 3, 0x99 + 3, 0x82 + 3]);
      for (const t of TEXTS) expect(tok.decodeSync(tok.encodeSync(t))).to.equal(t);
    });

    it('streams multi-byte characters whole', async () => {
      const text = tok.encodeSync(' café 日本 🙂 done', { addSpecialTokens: false });
      await streamCheck(tok, tok.encodeSync('Say:'), text);
    });
  });

  describe('stories260K: tok512.bin and the GGUF vocabulary agree', function () {
    it('gives the same ids for every text', function () {
      if (!models) skipBecause(this, '../shared/models/llama2-tokenizer is absent');
      const a = SentencePieceTokenizer.fromLlama2c(join(models, 'stories260K', 'tok512.bin'), 512);
      const g = openGguf(join(models, 'stories260K', 'stories260K.gguf'));
      const b = SentencePieceTokenizer.fromGguf(g);
      g.file.close();
      expect(b.vocabSize).to.equal(512);
      for (const t of TEXTS) {
        expect(b.encodeSync(t), t).to.deep.equal(a.encodeSync(t));
        expect(b.decodeSync(a.encodeSync(t))).to.equal(t);
      }
      expect(() => b.applyChatTemplate([{ role: 'user', content: 'hi' }])).to.throw(MiniVllmError, /no chat template/);
    });
  });

  describe('the synthetic tokenizer of dummy models', function () {
    it("has the model's vocabulary size, round-trips text, and hides the special ids", async () => {
      const tok = syntheticTokenizer(128256, { bosTokenId: 128000, eosTokenIds: [128001, 128009] });
      expect(tok.vocabSize).to.equal(128256);
      for (const t of TEXTS) expect(await tok.decode(await tok.encode(t))).to.equal(t);
      expect((await tok.encode('hi'))[0]).to.equal(128000);
      expect(await tok.decode([128000, 128001, 128009])).to.equal('');
      const words = await tok.decode([1000, 1001, 1002]);
      expect(words).to.match(/^[a-z]+ [a-z]+ [a-z]+$/);
      await streamCheck(tok, [128000, 500], [1000, 3 + 0xf0, 3 + 0x9f, 3 + 0x99, 3 + 0x82, 1001]);
      expect(tok.applyChatTemplate([{ role: 'user', content: 'hi' }])).to.equal('<|user|>\nhi\n<|assistant|>\n');
    });
  });

  it("Gemma's chat template: its turns, and its refusals as a TypeError naming the messages", () => {
    // google/gemma-2-2b-it's tokenizer_config.json chat_template
    const gemma =
      "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}" +
      "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
      "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}" +
      "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}" +
      "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";
    const ctx = { bosToken: '<bos>', eosToken: '<eos>', addGenerationPrompt: true };
    const turns = [
      { role: 'user', content: 'Hi!' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: ' Why? ' },
    ];
    expect(renderChatTemplate(gemma, turns, ctx)).to.equal(
      '<bos><start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n' +
        '<start_of_turn>user\nWhy?<end_of_turn>\n<start_of_turn>model\n',
    );
    expectThrow(
      () => renderChatTemplate(gemma, [{ role: 'system', content: 'be brief' }, turns[0]!], ctx),
      TypeError,
      /applyChatTemplate: the model's chat template refused the messages: System role not supported/,
    );
  });

  it('rejects bad input with a clear error', () => {
    const tok = syntheticTokenizer(1000, { bosTokenId: 1, eosTokenIds: [2] });
    expectThrow(() => tok.decodeSync([5, 1000]), RangeError, /token id 1000 is outside \[0, 1000\)/);
    expectThrow(() => tok.decodeSync([-1]), RangeError, /token id -1/);
    expectThrow(() => tok.encodeSync(42 as unknown as string), TypeError, /text must be a string/);
    expectThrow(() => tok.applyChatTemplate('hi' as never), TypeError, /messages must be an array/);
  });
});
