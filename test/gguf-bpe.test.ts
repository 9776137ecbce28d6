// GGUF files whose vocabulary is byte-level BPE (`tokenizer.ggml.model = gpt2`, what Qwen and Llama 3 GGUF files
// carry), read as llama.cpp reads them: the ids of texts (contractions in both cases, digit runs, unicode, whitespace,
// special tokens) against llama.cpp's llama_tokenize on the same files (test/fixtures/families/bpe-tokens.json).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { MiniVllmError } from '../lib/errors.js';
import { loadTokenizer } from '../lib/model/index.js';
import { bpeVocabularies, FAMILY_CONFIGS, familyWeights, writeFamilyGguf } from './family-models.js';
import { expectReject } from './helpers.js';

const fixture = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../test/fixtures/families/bpe-tokens.json', import.meta.url)), 'utf8'),
) as { texts: string[]; files: Record<'qwen2' | 'llama-bpe', { sha256: string; ids: string[] }> };

describe('GGUF byte-level BPE vocabularies against llama.cpp', () => {
  const work = mkdtempSync(join(tmpdir(), 'mvllm-bpe-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  const vocabs = bpeVocabularies();
  const write = (pre: keyof typeof vocabs, path: string, edit: (v: (typeof vocabs)[typeof pre]) => void = () => {}) => {
    const config = pre === 'qwen2' ? FAMILY_CONFIGS.qwen2 : FAMILY_CONFIGS.llama3;
    const vocab = { ...vocabs[pre] };
    edit(vocab);
    writeFamilyGguf(path, config, familyWeights(config, 1), vocab);
    return path;
  };

  for (const pre of ['qwen2', 'llama-bpe'] as const) {
    describe(`tokenizer.ggml.pre = ${pre}`, () => {
      const path = join(work, `bpe-${pre}.gguf`);
      before(() => write(pre, path));

      it('the file is the one llama.cpp tokenized with (sha256)', () => {
        expect(createHash('sha256').update(readFileSync(path)).digest('hex')).to.equal(fixture.files[pre].sha256);
      });

      it(`the ids of ${fixture.texts.length} texts are llama.cpp’s, and decode back to the text`, async () => {
        const { tokenizer } = await loadTokenizer(path);
        for (const [i, text] of fixture.texts.entries()) {
          const want = fixture.files[pre].ids[i]!.split(' ').map(Number);
          expect(await tokenizer.encode(text), JSON.stringify(text)).to.deep.equal(want);
          const plain = await tokenizer.encode(text, { addSpecialTokens: false });
          expect(await tokenizer.decode(plain, { skipSpecialTokens: false })).to.equal(text);
        }
        // Llama 3 prepends BOS, Qwen does not (tokenizer.ggml.add_bos_token)
        expect((await tokenizer.encode('Hello world'))[0] === 317).to.equal(pre === 'llama-bpe');
        expect(tokenizer.eosTokenIds).to.include(319);
      });
    });
  }

  it('a split pattern it does not know, and merges that are not pairs, are refused naming the key', async () => {
    const odd = write('qwen2', join(work, 'odd-pre.gguf'), (v) => {
      v.pre = 'chatglm-bpe';
    });
    await expectReject(loadTokenizer(odd), MiniVllmError, /tokenizer.ggml.pre "chatglm-bpe" is not supported/);
    const bad = write('qwen2', join(work, 'bad-merges.gguf'), (v) => {
      v.merges = ['Ġthe'];
    });
    await expectReject(loadTokenizer(bad), Error, /tokenizer.ggml.merges is missing or not a list of "left right"/);
  });
});
