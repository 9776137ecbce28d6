// A tiny Hugging Face-format Llama written here (safetensors + config.json + tokenizer.json) loads and matches the
// float64 reference forward pass; its tokenizer (Hugging Face `tokenizers`) agrees with our SentencePiece BPE.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Device } from '../lib/index.js';
import { generate, InferenceEngine } from '../lib/engine/index.js';
import { type LlamaConfig, type LoadedModel, loadModel } from '../lib/model/index.js';
import { llamaForward, type ReferenceWeights, ropeInvFreq } from '../lib/reference/index.js';
import { SentencePieceTokenizer } from '../lib/tokenizer/sentencepiece.js';
import { syntheticTokenizer } from '../lib/tokenizer/synthetic.js';
import { describeDevices, expectClose, prefillLogits, sharedModels, skipBecause } from './helpers.js';
import { CHAT_TEMPLATE, TINY_CONFIG, writeTinyHfModel } from './tiny-models.js';

const models = sharedModels();
const sp = models
  ? SentencePieceTokenizer.fromLlama2c(join(models, 'stories260K', 'tok512.bin'), 512)
  : syntheticTokenizer(512, { bosTokenId: 1, eosTokenIds: [2] });
const { pieces, scores } = sp.vocabulary();

describe('a tiny Hugging Face Llama written by the test', function () {
  const tmp = mkdtempSync(join(tmpdir(), 'mini-vllm-hf-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const variants: {
    label: string;
    dir: string;
    config: LlamaConfig;
    shards: number;
    dtype: 'F32' | 'BF16';
    weights?: ReferenceWeights;
  }[] = [
    {
      label: 'one float32 model.safetensors, separate lm_head',
      dir: join(tmp, 'f32'),
      config: TINY_CONFIG,
      shards: 1,
      dtype: 'F32',
    },
    {
      label: 'three bfloat16 shards with an index, tied embeddings, 8 heads on 1 KV head',
      dir: join(tmp, 'bf16'),
      config: { ...TINY_CONFIG, numHeads: 8, numKvHeads: 1, headDim: 8, tieWordEmbeddings: true, ropeTheta: 500000 },
      shards: 3,
      dtype: 'BF16',
    },
    {
      label: 'Llama 3.1 rope scaling (llama3: factor 8, original context 8)',
      dir: join(tmp, 'llama3-rope'),
      config: {
        ...TINY_CONFIG,
        ropeTheta: 500000,
        ropeScaling: {
          type: 'llama3',
          factor: 8,
          lowFreqFactor: 1,
          highFreqFactor: 4,
          originalMaxPositionEmbeddings: 8,
        },
      },
      shards: 1,
      dtype: 'F32',
    },
  ];
  for (const v of variants)
    v.weights = writeTinyHfModel(v.dir, {
      config: v.config,
      shards: v.shards,
      dtype: v.dtype,
      pieces: [...pieces],
      scores,
    });

  const prompts = [
    [1, 300, 301, 302, 45, 67, 89, 400, 401, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17],
    [1, 77],
    [1, 260, 261, 262, 263],
  ];

  describeDevices('forward pass against the float64 reference', (device: Device) => {
    for (const v of variants) {
      it(`${v.label}: last-token logits of a 3-sequence prefill within 2e-4`, async () => {
        const m = await loadModel(v.dir, { device, dtype: 'float32' });
        try {
          expect(m.format).to.equal('hf');
          // the loader names the family it read: a Llama here
          expect(m.config).to.deep.equal({ architecture: 'llama', attentionBias: false, qkNorm: false, ...v.config });
          const got = prefillLogits(m, prompts);
          prompts.forEach((p, i) => {
            const ref = llamaForward(v.config, v.weights!, p).at(-1)!;
            expectClose(got[i]!, Float32Array.from(ref), { atol: 2e-4, rtol: 1e-4 });
          });
        } finally {
          m.model.dispose();
        }
      });
    }

    it('greedy generation follows the reference argmax step by step (prefill, decode through the cache)', async () => {
      const v = variants[0]!;
      const m = await loadModel(v.dir, { device, dtype: 'float32' });
      try {
        const [r] = await generate(m, [prompts[2]!], { temperature: 0, maxTokens: 8, ignoreEos: true });
        const seq = [...prompts[2]!];
        for (const token of r!.tokenIds) {
          const ref = llamaForward(v.config, v.weights!, seq).at(-1)!;
          expect(token).to.equal(ref.indexOf(Math.max(...ref)));
          seq.push(token);
        }
      } finally {
        m.model.dispose();
      }
    });
  });

  it(
    'scales the RoPE frequencies as Llama 3.1 does: high kept, low divided by the factor, the band between ' +
      'blended',
    () => {
      const scaling = {
        type: 'llama3',
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 8192,
      } as const;
      const plain = ropeInvFreq(128, 500000);
      const scaled = ropeInvFreq(128, 500000, scaling);
      const wavelen = (i: number) => (2 * Math.PI) / plain[i]!;
      let kept = 0,
        divided = 0,
        blended = 0;
      for (let i = 0; i < 64; ++i) {
        if (wavelen(i) < 8192 / 4) {
          expect(scaled[i]).to.equal(plain[i]);
          kept++;
        } else if (wavelen(i) > 8192) {
          expect(scaled[i]).to.be.closeTo(plain[i]! / 8, plain[i]! * 1e-6);
          divided++;
        } else {
          expect(scaled[i]).to.be.within(plain[i]! / 8, plain[i]!);
          blended++;
        }
      }
      expect([kept, divided, blended].every((n) => n > 0)).to.equal(
        true,
        `${kept} kept, ${divided} divided, ${blended} blended`,
      );
    },
  );

  it(
    "serves through InferenceEngine (Hugging Face tokenizers on the caller's thread and in the worker), as " +
      'generate() does',
    async () => {
      const dir = variants[0]!.dir;
      const m = await loadModel(dir, { device: 'cpu' });
      const engine = await InferenceEngine.create({ model: dir, device: 'cpu' });
      try {
        const p = { temperature: 0, maxTokens: 12, ignoreEos: true };
        const want = await generate(m, ['hello world', 'the cat'], p);
        const got = await engine.generate(['hello world', 'the cat'], p);
        expect(got.map((r) => [r.tokenIds, r.text])).to.deep.equal(want.map((r) => [r.tokenIds, r.text]));
      } finally {
        await engine.stop();
        m.model.dispose();
      }
    },
  );

  describe('tokenizer.json through Hugging Face tokenizers', function () {
    let m: LoadedModel;
    before(async () => {
      m = await loadModel(variants[0]!.dir, { device: 'cpu' });
    });
    after(() => m?.model.dispose());

    it('reads BOS, EOS, chat template (tokenizer_config.json), more EOS ids (generation_config.json)', async () => {
      expect(m.tokenizer.bosTokenId).to.equal(1);
      expect(m.tokenizer.eosTokenIds).to.deep.equal([2]);
      const dir = join(tmp, 'with-generation-config');
      cpSync(variants[0]!.dir, dir, { recursive: true });
      writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: [2, 7] }));
      const g = await loadModel(dir, { device: 'cpu' });
      expect(g.config.eosTokenIds).to.deep.equal([2, 7]);
      g.model.dispose();
      expect(m.tokenizer.chatTemplate).to.equal(CHAT_TEMPLATE);
      expect(
        m.tokenizer.applyChatTemplate([
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: 'Bye' },
        ]),
      ).to.equal('<s>[INST] Hi [/INST] Hello</s>[INST] Bye [/INST]');
    });

    it("drives the llama2.c checkpoint to run.c's output when passed as --tokenizer", async function () {
      if (!models) skipBecause(this, '../shared/models/stories260K is absent');
      const l2c = await loadModel(join(models, 'stories260K', 'stories260K.bin'), {
        device: 'cpu',
        tokenizer: join(variants[0]!.dir, 'tokenizer.json'),
      });
      try {
        const golden = JSON.parse(readFileSync(join(models, 'stories260K', 'golden.json'), 'utf8')) as {
          cases: { prompt: string; steps: number; expected_stdout: string; generated_ids: number[] }[];
        };
        const c = golden.cases[0]!;
        const prompt = await l2c.tokenizer.encode(c.prompt);
        const [r] = await generate(l2c, c.prompt, { temperature: 0, maxTokens: c.steps + 1 - prompt.length });
        expect(r!.tokenIds).to.deep.equal(c.generated_ids);
        expect((await l2c.tokenizer.decode(prompt)) + r!.text + '\n').to.equal(c.expected_stdout);
      } finally {
        l2c.model.dispose();
      }
    });

    const texts = [
      'Once upon a time',
      'Lily and Ben went to the park. "Look!" she said.',
      'naïve café — 日本 🙂',
      '  two  spaces',
      '',
    ];
    it('encodes exactly as our SentencePiece BPE does on the same vocabulary, and decodes back', async () => {
      for (const t of texts) {
        const ids = await m.tokenizer.encode(t);
        expect(ids, JSON.stringify(t)).to.deep.equal(sp.encodeSync(t));
        expect(await m.tokenizer.decode(ids)).to.equal(t);
      }
    });
  });
});
