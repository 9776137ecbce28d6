// Each model family against a reference we did not write into the engine (test/fixtures/families, README there):
// llama.cpp's logits (Qwen2) or a float64 numpy forward of the published architecture (Qwen3), for tiny seeded models
// written as GGUF files and as Hugging Face directories. Logits at every position of a 64-token path (a 40-token
// prompt and 24 greedy tokens), decoding token by token, and the engine's greedy output alone and in a batch.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { generate } from '../lib/engine/index.js';
import { type LoadedModel, loadModel, parameterCount, writeSafetensors } from '../lib/model/index.js';
import { quantizeModel } from '../lib/model/quantize-model.js';
import { configFromHf, configToHf } from '../lib/model/config-hf.js';
import { layerWindow, type LlamaConfig } from '../lib/model/config.js';
import {
  FAMILY_CONFIGS,
  FAMILY_SEEDS,
  type FamilyFixture,
  familyWeights,
  writeFamilyGguf,
  writeFamilyHf,
} from './family-models.js';
import { MiniVllmError } from '../lib/errors.js';
import { familyOf, patternLayers } from '../lib/model/families.js';
import { QuantizedTensor } from '../lib/quant/tensor.js';
import { PackedQuantWeight } from '../lib/model/linear-weight.js';
import { decodeLogits, describeDevices, expectClose, expectReject, onEmulator, prefillLogits } from './helpers.js';

const dir = fileURLToPath(new URL('../../test/fixtures/families/', import.meta.url));
interface FamilySet {
  source: string;
  sha256: string;
  reference: string;
  logits: string;
  greedy: number[];
  /** llama.cpp's logits of the same file beside the float64 ones (make.sh's `both`), and how far they are apart. */
  llamaCpp?: { logits: string; greedy: number[]; maxAbsDiffToFloat64: number };
}
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
  prompt: number[];
  vocab: number;
  sets: Record<FamilyFixture, FamilySet>;
};
const { prompt, vocab } = manifest;
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The reference's logits of one family (or the file named), one row per position of prompt + greedy. */
function referenceRows(set: FamilySet, file = set.logits): Float32Array[] {
  const all = new Float32Array(new Uint8Array(readFileSync(join(dir, file))).buffer);
  const n = prompt.length + set.greedy.length;
  expect(all.length, `${file} holds [${n}, ${vocab}]`).to.equal(n * vocab);
  return Array.from({ length: n }, (_, p) => all.slice(p * vocab, (p + 1) * vocab));
}

function logSoftmax(row: ArrayLike<number>, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; ++i) max = Math.max(max, row[i]!);
  let sum = 0;
  for (let i = 0; i < row.length; ++i) sum += Math.exp(row[i]! - max);
  return row[id]! - max - Math.log(sum);
}

// float32 through the whole forward on both sides: the differences are summation order (about 1e-5 is seen on
// logits of magnitude 4-16); the float64 reference and llama.cpp agree to 1.7e-6 on Qwen2 (manifest.json).
const ATOL = 2e-4;
// llama.cpp's CPU GELU looks its input up in a float16 table: its Gemma 2 logits are 1.6e-3 from the float64 ones
// (manifest.json), ours 2e-4
const LLAMA_CPP_ATOL = 3e-3;

const work = mkdtempSync(join(tmpdir(), 'mvllm-families-'));
after(() => rmSync(work, { recursive: true, force: true }));
const written = new Map<string, { gguf: string; hf: string; quantized: string }>();
/** The family's model as the reference's GGUF, as a Hugging Face directory, and that directory through quantize f32. */
function files(family: FamilyFixture): { gguf: string; hf: string; quantized: string } {
  let f = written.get(family);
  if (!f) {
    const c = FAMILY_CONFIGS[family];
    const w = familyWeights(c, FAMILY_SEEDS[family]);
    f = {
      gguf: join(work, `${family}.gguf`),
      hf: join(work, `${family}-hf`),
      quantized: join(work, `${family}-q.gguf`),
    };
    writeFamilyGguf(f.gguf, c, w);
    writeFamilyHf(f.hf, c, w);
    if (hasGguf(c)) quantizeModel(f.hf, f.quantized, 'f32');
    written.set(family, f);
  }
  return f;
}

/** A GGUF's window is on every layer or on its family's pattern (Gemma's): a window elsewhere has no GGUF form. */
function hasGguf(c: LlamaConfig): boolean {
  return c.slidingWindowLayers === undefined || familyOf(c).slidingPattern > 0;
}

const FORMS = {
  gguf: 'GGUF',
  hf: 'Hugging Face',
  quantized: 'Hugging Face -> mini-vllm quantize f32 -> GGUF',
} as const;

describe('model families: the fixtures', () => {
  for (const family of Object.keys(FAMILY_CONFIGS) as FamilyFixture[]) {
    it(`${family}: the source model is the one the reference ran (sha256), and the greedy path is 24 tokens`, () => {
      const set = manifest.sets[family];
      expect(sha256(files(family).gguf)).to.equal(set.sha256);
      expect(set.greedy).to.have.length(24);
      const rows = referenceRows(set);
      // the path is the reference's own argmax at every step
      set.greedy.forEach((id, k) => {
        const row = rows[prompt.length - 1 + k]!;
        expect(row.indexOf(Math.max(...row)), `greedy token ${k}`).to.equal(id);
      });
    });
  }
});

for (const family of Object.keys(FAMILY_CONFIGS) as FamilyFixture[]) {
  const set = manifest.sets[family];
  // a window on some layers only has no GGUF form: that set is read from its Hugging Face directory alone
  const forms = (Object.keys(FORMS) as (keyof typeof FORMS)[]).filter(
    (f) => f === 'hf' || hasGguf(FAMILY_CONFIGS[family]),
  );
  for (const form of forms) {
    // the forms differ in their loaders only: the emulated device (slow) runs each set's first form, the CPU all three
    const onDevices =
      form === forms[0]
        ? describeDevices
        : (title: string, body: (device: 'cpu') => void) => describe(`${title} on cpu`, () => body('cpu'));
    onDevices(`${family} (${FORMS[form]}) against ${set.reference}`, (device) => {
      let m: LoadedModel;
      let ref: Float32Array[];
      const path = [...prompt, ...set.greedy];
      before(async function () {
        this.timeout(120_000);
        ref = referenceRows(set);
        // quantize wrote no vocabulary (the directory's is a tokenizer.json): the directory's tokenizer is passed
        const tokenizer = form === 'quantized' ? { tokenizer: join(files(family).hf, 'tokenizer.json') } : {};
        m = await loadModel(files(family)[form], { device, dtype: 'float32', ...tokenizer });
      });
      after(() => m?.model.dispose());

      it('loads as its family', () => {
        const c: LlamaConfig = FAMILY_CONFIGS[family];
        const gguf = form !== 'hf';
        expect(m.config).to.include({
          architecture: c.architecture,
          headDim: c.headDim,
          tieWordEmbeddings: c.tieWordEmbeddings,
          // a GGUF Llama's q/k rows were permuted to adjacent pairs
          ropeStyle: gguf && c.architecture === 'llama' ? 'gptj' : 'neox',
        });
        expect(!!m.config.attentionBias).to.equal(!!c.attentionBias);
        expect(!!m.config.qkNorm).to.equal(!!c.qkNorm);
        expect(m.config.moe).to.deep.equal(c.moe);
        // Llama 3.1's scaling is a rope_freqs tensor in a GGUF file
        const scaling = c.ropeScaling?.type === 'llama3' && gguf ? 'freqFactors' : c.ropeScaling?.type;
        expect(m.config.ropeScaling?.type).to.equal(scaling);
      });

      it(`logits at all ${path.length} positions in one prefill`, () => {
        const got = prefillLogits(m, [path], true);
        got.forEach((row, p) => expectClose(row, ref[p]!, { atol: ATOL, rtol: 0 }, `position ${p}`));
      });

      if (set.llamaCpp)
        it(`logits within ${LLAMA_CPP_ATOL} of llama.cpp's too (its GELU reads a float16 table)`, () => {
          const cpp = referenceRows(set, set.llamaCpp!.logits);
          expect(set.llamaCpp!.greedy).to.deep.equal(set.greedy);
          const got = prefillLogits(m, [path], true);
          got.forEach((row, p) => expectClose(row, cpp[p]!, { atol: LLAMA_CPP_ATOL, rtol: 0 }, `position ${p}`));
        });

      it('logits decoding one token at a time', function () {
        if (onEmulator(device)) this.timeout(600_000);
        const got = decodeLogits(m.model, path);
        got.forEach((row, p) => expectClose(row, ref[p]!, { atol: ATOL, rtol: 0 }, `position ${p}`));
      });

      it('the engine’s greedy tokens and their logprobs, alone and batched with two other prompts', async () => {
        const params = { temperature: 0, maxTokens: set.greedy.length, ignoreEos: true, logprobs: 0 };
        const others = [prompt.slice(3, 30), [1, ...prompt.slice(10).reverse()]];
        const [alone] = await generate(m, prompt, params);
        const batch = await generate(m, [others[0]!, prompt, others[1]!], params);
        for (const [r, label] of [
          [alone!, 'alone'],
          [batch[1]!, 'batched'],
        ] as const) {
          expect(r.tokenIds, label).to.deep.equal(set.greedy);
          r.logprobs!.forEach((lp, k) => {
            const want = logSoftmax(ref[prompt.length - 1 + k]!, set.greedy[k]!);
            expect(lp.logprob, `${label}, token ${k}`).to.be.closeTo(want, 1e-4);
          });
        }
      });
    });
  }
}

describe('model families: what is refused, and how', () => {
  const refused = (edit: (cfg: Record<string, unknown>) => void, pattern: RegExp) => {
    const dir = mkdtempSync(join(work, 'refused-'));
    const c = FAMILY_CONFIGS.qwen2;
    writeFamilyHf(dir, c, familyWeights(c, 1));
    const cfgFile = join(dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    edit(cfg);
    writeFileSync(cfgFile, JSON.stringify(cfg));
    return expectReject(loadModel(dir, { device: 'cpu' }), MiniVllmError, pattern);
  };

  it('an architecture no family describes: ERR_UNSUPPORTED naming it and the ones that load', async () => {
    await refused((c) => {
      c['architectures'] = ['MambaForCausalLM'];
    }, /architecture \["MambaForCausalLM"\] is not supported \(LlamaForCausalLM, .*OlmoeForCausalLM\)/);
  });

  it('a RoPE scaling or an MLP bias the forward does not apply, a bad sliding window', async () => {
    await refused((c) => {
      c['rope_scaling'] = { rope_type: 'dynamic', factor: 2 };
    }, /rope_scaling type "dynamic" is not supported yet \(linear, llama3, yarn, longrope\)/);
    await refused((c) => {
      c['rope_scaling'] = { rope_type: 'longrope', short_factor: [1], long_factor: [2] };
    }, /RoPE shortFactors must be 8 positive numbers \(rotaryDim \/ 2\), got 1/);
    await refused((c) => {
      c['rope_scaling'] = { rope_type: 'longrope', short_factor: [1], long_factor: [2], short_mscale: 1 };
    }, /rope_scaling.short_mscale \(Phi-3.5-MoE's LongRoPE\) is not supported/);
    await refused((c) => {
      c['rope_scaling'] = { rope_type: 'yarn', factor: 4, mscale: 1 };
    }, /rope_scaling.mscale \(DeepSeek's YaRN\) is not supported/);
    await refused((c) => {
      c['use_sliding_window'] = true;
      c['sliding_window'] = -3;
    }, /"sliding_window" must be a non-negative integer, got -3/);
    await refused((c) => {
      c['mlp_bias'] = true;
    }, /mlp_bias is not supported yet/);
  });

  it('a GGUF file of another architecture', async () => {
    const path = join(work, 'mamba.gguf');
    const c = FAMILY_CONFIGS.qwen2;
    writeFamilyGguf(path, c, familyWeights(c, 1));
    // the architecture and its keys renamed in place (the same length): 'qwen2' -> 'mamba'
    const bytes = readFileSync(path);
    for (let i = bytes.indexOf('qwen2'); i >= 0; i = bytes.indexOf('qwen2', i + 5)) bytes.write('mamba', i, 'latin1');
    writeFileSync(path, bytes);
    await expectReject(
      loadModel(path, { device: 'cpu' }),
      MiniVllmError,
      /architecture "mamba" is not supported \(llama, qwen2, qwen3, phi3, gemma2, gemma3, qwen2moe, qwen3moe, olmoe\)/,
    );
  });
});

describe('model families: which layers a config.json gives a sliding window', () => {
  const base = configToHf(FAMILY_CONFIGS.qwen2);
  const read = (extra: Record<string, unknown>) => {
    const c = configFromHf({ ...base, num_hidden_layers: 4, ...extra }, 'config.json');
    return [0, 1, 2, 3].map((i) => layerWindow(c, i));
  };
  it('Qwen: only with use_sliding_window, from max_window_layers on', () => {
    expect(read({ sliding_window: 8 })).to.deep.equal([0, 0, 0, 0]);
    expect(read({ sliding_window: 8, use_sliding_window: true, max_window_layers: 3 })).to.deep.equal([0, 0, 0, 8]);
    expect(read({ sliding_window: 8, use_sliding_window: true, max_window_layers: 4 })).to.deep.equal([0, 0, 0, 0]);
  });
  it('Mistral and Phi-3: every layer; layer_types where a config lists them', () => {
    const mistral = { architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: 4096 };
    expect(read(mistral)).to.deep.equal([4096, 4096, 4096, 4096]);
    const types = ['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention'];
    expect(read({ ...mistral, layer_types: types })).to.deep.equal([4096, 0, 4096, 0]);
    expect(() => read({ ...mistral, layer_types: ['sliding_attention'] })).to.throw(/"layer_types" must list 4/);
  });
});

describe('model families: Gemma’s config.json and GGUF settings', () => {
  const gemma2 = configToHf(FAMILY_CONFIGS.gemma2);
  const read = (extra: Record<string, unknown>, from = gemma2) =>
    configFromHf({ ...from, num_hidden_layers: 6, layer_types: undefined, ...extra }, 'config.json');
  it('the window pattern where a config lists no layer_types: Gemma 2 even layers, Gemma 3 five of six', () => {
    const windows = (c: LlamaConfig) => [0, 1, 2, 3, 4, 5].map((i) => layerWindow(c, i));
    expect(windows(read({}))).to.deep.equal([12, 0, 12, 0, 12, 0]);
    const gemma3 = configToHf(FAMILY_CONFIGS.gemma3);
    expect(windows(read({}, gemma3))).to.deep.equal([12, 12, 12, 12, 12, 0]);
    expect(windows(read({ sliding_window_pattern: 3 }, gemma3))).to.deep.equal([12, 12, 0, 12, 12, 0]);
  });
  it('query_pre_attn_scalar, soft-caps, the local RoPE base; the (1 + w) norms are added at load', () => {
    const c = read({ query_pre_attn_scalar: 144, rope_local_base_freq: 10000 });
    expect(c).to.include({ attnLogitSoftCap: 4, finalLogitSoftCap: 3, slidingRopeTheta: 10000, addUnitToNorms: true });
    expect(c.attentionScale).to.be.closeTo(1 / 12, 1e-12);
    const none = read({ attn_logit_softcapping: null, final_logit_softcapping: null });
    expect(none.attnLogitSoftCap).to.equal(undefined);
    expect(none.finalLogitSoftCap).to.equal(undefined);
  });
  it('an activation other than GELU-tanh, or a model type read without architectures', () => {
    expect(() => read({ hidden_activation: 'gelu' })).to.throw(MiniVllmError, /hidden activation "gelu" is not/);
    const text: Record<string, unknown> = { ...configToHf(FAMILY_CONFIGS.gemma3), architectures: undefined };
    expect(configFromHf(text, 'config.json').architecture).to.equal('gemma3');
    expect(text['model_type']).to.equal('gemma3_text');
  });
  it('Gemma3ForConditionalGeneration (4B-27B): text_config over Gemma3TextConfig’s defaults', () => {
    // google/gemma-3-4b-it's text_config lists five keys
    const c = configFromHf(
      {
        architectures: ['Gemma3ForConditionalGeneration'],
        model_type: 'gemma3',
        eos_token_id: [1, 106],
        text_config: {
          hidden_size: 2560,
          intermediate_size: 10240,
          model_type: 'gemma3_text',
          num_hidden_layers: 34,
          rope_scaling: { factor: 8.0, rope_type: 'linear' },
          sliding_window: 1024,
        },
        vision_config: { model_type: 'siglip_vision_model' },
      },
      'config.json',
    );
    expect(c).to.deep.include({
      architecture: 'gemma3',
      vocabSize: 262208,
      hiddenSize: 2560,
      numLayers: 34,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 256,
      attentionScale: 1 / 16,
      slidingWindow: 1024,
      slidingRopeTheta: 10000,
      ropeTheta: 1000000,
      tieWordEmbeddings: true,
      bosTokenId: 2,
      eosTokenIds: [1, 106],
    });
    expect(c.ropeScaling).to.deep.equal({ type: 'linear', factor: 8 });
    expect(c.slidingWindowLayers).to.deep.equal(patternLayers(6, 34));
    expect(() =>
      configFromHf({ architectures: ['Gemma3ForConditionalGeneration'], text_config: 3 }, 'config.json'),
    ).to.throw(MiniVllmError, /Gemma3ForConditionalGeneration needs a "text_config" object, got 3/);
  });
  for (const prefix of ['language_model.model.', 'model.language_model.'])
    it(`Gemma3ForConditionalGeneration: the text under ${prefix}*, no vision tower read, its logits`, async () => {
      const c = FAMILY_CONFIGS.gemma3;
      const dir = join(work, `gemma3-multimodal-${prefix.length}`);
      writeFamilyHf(dir, c, familyWeights(c, FAMILY_SEEDS.gemma3));
      const { architectures: _, ...text } = configToHf(c);
      // the set's attention scale is 1 / sqrt(headDim), as Gemma 3's (query_pre_attn_scalar = head_dim); unset, the
      // default of 256 would apply
      const textConfig = { ...text, query_pre_attn_scalar: c.headDim };
      const outer = {
        architectures: ['Gemma3ForConditionalGeneration'],
        model_type: 'gemma3',
        text_config: textConfig,
      };
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...outer, vision_config: {} }));
      const tensors = [...familyWeights(c, FAMILY_SEEDS.gemma3)].map(([name, { shape, data }]) => ({
        name: prefix + name.slice('model.'.length),
        shape,
        dtype: 'F32' as const,
        data,
      }));
      const vision = { shape: [4, 4], dtype: 'F32' as const, data: new Float32Array(16).fill(Number.NaN) };
      writeSafetensors(join(dir, 'model.safetensors'), [
        ...tensors,
        { name: 'vision_tower.vision_model.embeddings.patch_embedding.weight', ...vision },
      ]);
      const m = await loadModel(dir, { device: 'cpu' });
      try {
        const set = manifest.sets.gemma3;
        const ref = referenceRows(set);
        const got = prefillLogits(m, [[...prompt, ...set.greedy]], true);
        got.forEach((row, p) => expectClose(row, ref[p]!, { atol: ATOL, rtol: 0 }, `position ${p}`));
      } finally {
        m.model.dispose();
      }
    });
  it('quantize refuses a Gemma its GGUF form cannot hold (an attention scale llama.cpp would not use)', () => {
    const hf = join(work, 'gemma2-scaled');
    const c = { ...FAMILY_CONFIGS.gemma2, attentionScale: 0.2 };
    writeFamilyHf(hf, c, familyWeights(c, 1));
    expect(() => quantizeModel(hf, join(work, 'gemma2-scaled.gguf'), 'f32')).to.throw(
      MiniVllmError,
      /attention scale 0.2 has no gemma2 GGUF form \(llama.cpp uses 0.25/,
    );
  });
});

describe('model families: Mixture-of-Experts configs', () => {
  const qwen3moe = configToHf(FAMILY_CONFIGS.qwen3moe);
  it('config.json: experts, experts per token, norm_topk_prob; Mixtral always renormalises', () => {
    expect(configFromHf({ ...qwen3moe, norm_topk_prob: false }, 'config.json').moe).to.deep.equal({
      numExperts: 8,
      topK: 2,
      renormalize: false,
    });
    const mixtral = configToHf(FAMILY_CONFIGS.mixtral);
    expect(mixtral['architectures']).to.deep.equal(['MixtralForCausalLM']);
    expect(configFromHf({ ...mixtral, norm_topk_prob: false }, 'config.json').moe?.renormalize).to.equal(true);
    expect(configFromHf(configToHf(FAMILY_CONFIGS.olmoe), 'config.json').moe?.renormalize).to.equal(false);
  });
  it('Qwen2-MoE: its shared expert, not renormalised unless norm_topk_prob says', () => {
    const qwen2moe = configToHf(FAMILY_CONFIGS.qwen2moe);
    expect(qwen2moe['architectures']).to.deep.equal(['Qwen2MoeForCausalLM']);
    expect(qwen2moe['model_type']).to.equal('qwen2_moe');
    expect(configFromHf(qwen2moe, 'config.json').moe).to.deep.equal(FAMILY_CONFIGS.qwen2moe.moe);
    const { norm_topk_prob: _, ...unsaid } = qwen2moe;
    expect(configFromHf(unsaid, 'config.json').moe?.renormalize).to.equal(false);
    // Qwen1.5-MoE's config names a window it does not use (use_sliding_window false)
    const window = { sliding_window: 32768, use_sliding_window: false, max_window_layers: 21 };
    expect(configFromHf({ ...qwen2moe, ...window }, 'config.json').slidingWindow).to.equal(undefined);
  });
  it('refuses a shared expert outside Qwen2-MoE, dense layers, too many experts or experts per token', () => {
    const read = (extra: Record<string, unknown>) => () => configFromHf({ ...qwen3moe, ...extra }, 'config.json');
    expect(read({ shared_expert_intermediate_size: 5632 })).to.throw(
      MiniVllmError,
      /a shared expert is supported on Qwen2MoeForCausalLM only, not on Qwen3MoeForCausalLM/,
    );
    expect(read({ mlp_only_layers: [0] })).to.throw(MiniVllmError, /dense MLP layers/);
    expect(read({ decoder_sparse_step: 2 })).to.throw(MiniVllmError, /dense MLP layers/);
    expect(read({ num_experts: 300 })).to.throw(MiniVllmError, /300 experts is not supported \(1 to 256\)/);
    expect(read({ num_experts_per_tok: 9 })).to.throw(/experts per token must be in \[1, 8\], got 9/);
  });
  it('the parameter count holds every expert and router', () => {
    const c = FAMILY_CONFIGS.mixtral;
    const dense = parameterCount({ ...c, moe: undefined });
    const perLayerMlp = 3 * c.hiddenSize * c.intermediateSize;
    const router = c.moe.numExperts * c.hiddenSize;
    expect(parameterCount(c) - dense).to.equal(c.numLayers * ((c.moe.numExperts - 1) * perLayerMlp + router));
  });
  it('the parameter count holds a shared expert and its gate', () => {
    const c = FAMILY_CONFIGS.qwen2moe;
    const { sharedExpertSize: s, ...routed } = c.moe;
    const without = parameterCount({ ...c, moe: routed });
    expect(parameterCount(c) - without).to.equal(c.numLayers * (3 * c.hiddenSize * s + c.hiddenSize));
  });
});

describeDevices('model families: quantised experts (mini-vllm quantize of the mixtral set)', (device) => {
  // q8_0: every expert Q8_0; q4_k_m at these widths (not whole 256-blocks): gate/up experts Q5_0, down experts Q8_0
  for (const [target, atol] of [
    ['q8_0', 0.6],
    ['q4_k_m', 2.5],
  ] as const)
    it(`${target}: loads with its experts quantised, logits near the float reference`, async () => {
      const path = join(work, `mixtral-${target}.gguf`);
      quantizeModel(files('mixtral').hf, path, target);
      const m = await loadModel(path, {
        device,
        dtype: 'float32',
        tokenizer: join(files('mixtral').hf, 'tokenizer.json'),
      });
      try {
        // on the CPU, Q8_0 experts are interleaved by 8 rows (quantFusedMoePacked); Q5_0 has no such layout
        const l = m.model.weights.layers[0]!;
        const [w13, w2] = [l.experts!.w13, l.experts!.w2] as (QuantizedTensor | PackedQuantWeight)[];
        const packed = device === 'cpu' && target === 'q8_0';
        expect(w13).to.be.instanceOf(packed ? PackedQuantWeight : QuantizedTensor);
        expect(w2).to.be.instanceOf(packed ? PackedQuantWeight : QuantizedTensor);
        expect(w13!.type).to.equal(target === 'q8_0' ? 'Q8_0' : 'Q5_0');
        expect(w2!.type).to.equal('Q8_0');
        const set = manifest.sets.mixtral;
        const ref = referenceRows(set);
        const got = prefillLogits(m, [[...prompt, ...set.greedy]], true);
        // routing is discontinuous: where a token's k-th and next experts are within the quantisation error of a
        // tie, the quantised model may pick the other one (a whole expert's difference), so a few positions may
        // stray: at most 8 of 64 (1 and 3 seen)
        const far = got.filter((row, p) => row.some((v, i) => Math.abs(v - ref[p]![i]!) > atol)).length;
        expect(far, `positions with a logit more than ${atol} from the reference`).to.be.at.most(8);
      } finally {
        m.model.dispose();
      }
    });
});
