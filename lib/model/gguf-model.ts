// A GGUF file as a model: the config from its `<architecture>.*` metadata (each family lib/model/families.ts
// describes), and its tensors under Hugging Face names (lib/model/tensors.ts lists both).
// The file format itself is lib/formats/gguf.ts.
import { MiniVllmError, ModelFormatError } from '../errors.js';
import {
  readFloats,
  STORAGE_BYTES,
  type StorageType,
  type TensorSpan,
  spanSource,
  type WeightSource,
} from '../formats/file.js';
import type { GgufFile, GgufTensorInfo } from '../formats/gguf.js';
import { type QuantType, quantRowBytes } from '../quant/formats.js';
import { type RopeScaling, yarnAttentionFactor } from '../rope.js';
import { type LlamaConfig, validateConfig } from './config.js';
import { type Architecture, FAMILIES, isArchitecture, patternLayers } from './families.js';
import { modelTensors } from './tensors.js';

function metaNumber(g: GgufFile, key: string, fallback?: number): number {
  const v = g.metadata.get(key) ?? fallback;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n))
    throw new ModelFormatError(g.path, `metadata "${key}" is missing or not a number`);
  return n;
}

/**
 * The RoPE scaling a GGUF file holds: a rope_freqs tensor (llama.cpp's converter writes Llama 3.1's scaling as one
 * divisor per frequency), or `<arch>.rope.scaling.*` metadata (linear, YaRN).
 */
function ggufRopeScaling(g: GgufFile, arch: string, headDim: number): RopeScaling | null {
  const factors = (name: string) => {
    const t = g.tensors.get(name)!;
    if (t.type !== 'F32' || t.shape.length !== 1 || t.shape[0] !== headDim / 2)
      throw new ModelFormatError(g.path, `${name} must be F32 [${headDim / 2}], got ${t.type} [${t.shape.join(', ')}]`);
    const f = Float32Array.from(readFloats(g.file, t.offset, headDim / 2, 'F32', t.name));
    if (!f.every((x) => x > 0 && Number.isFinite(x)))
      throw new ModelFormatError(g.path, `${name} must hold positive finite factors`);
    return f;
  };
  const [long, short] = ['rope_factors_long.weight', 'rope_factors_short.weight'].map((n) => g.tensors.has(n));
  if (long !== short)
    throw new ModelFormatError(g.path, 'LongRoPE needs both rope_factors_long.weight and rope_factors_short.weight');
  if (long)
    // Phi-3's LongRoPE as llama.cpp's converter writes it: the factors as tensors, the original context and the
    // attention factor as metadata (llama.cpp picks one set by its context size; lib/rope.ts picks by position)
    return {
      type: 'longrope',
      shortFactors: factors('rope_factors_short.weight'),
      longFactors: factors('rope_factors_long.weight'),
      originalMaxPositionEmbeddings: metaNumber(
        g,
        `${arch}.rope.scaling.original_context_length`,
        metaNumber(g, `${arch}.context_length`),
      ),
      attentionFactor: metaNumber(g, `${arch}.rope.scaling.attn_factor`, 1),
    };
  if (g.tensors.has('rope_freqs.weight')) return { type: 'freqFactors', factors: factors('rope_freqs.weight') };
  const type = g.metadata.get(`${arch}.rope.scaling.type`);
  if (type === undefined || type === 'none') return null;
  const factor = metaNumber(g, `${arch}.rope.scaling.factor`);
  if (!(factor > 0)) throw new ModelFormatError(g.path, `${arch}.rope.scaling.factor must be positive, got ${factor}`);
  if (type === 'linear') return { type: 'linear', factor };
  if (type === 'yarn')
    return {
      type: 'yarn',
      factor,
      originalMaxPositionEmbeddings: metaNumber(g, `${arch}.rope.scaling.original_context_length`),
      betaFast: 32, // llama.cpp's defaults (its context parameters, not the file's)
      betaSlow: 1,
      attentionFactor: yarnAttentionFactor(factor) * metaNumber(g, `${arch}.rope.scaling.attn_factor`, 1),
    };
  throw new MiniVllmError(
    `${g.path}: ${arch}.rope.scaling.type ${JSON.stringify(type)} is not supported (none, linear, yarn)`,
    'ERR_UNSUPPORTED',
  );
}

/** Gemma 3's local RoPE base: llama.cpp's, not in the file. */
export const GEMMA3_LOCAL_ROPE_THETA = 10000;

/** The attention scale llama.cpp gives a GGUF file of `arch` (undefined: 1 / sqrt(headDim)). */
export function ggufAttentionScale(arch: Architecture, layers: number, hiddenPerHead: number): number | undefined {
  const big = (arch === 'gemma2' && layers === 46) || (arch === 'gemma3' && layers === 62);
  return big ? 1 / Math.sqrt(hiddenPerHead) : undefined;
}

/**
 * Gemma's numbers as llama.cpp reads them: Gemma 2's soft-caps from the file (llama.cpp's defaults where it is
 * silent); Gemma 3's local RoPE base (10000, not in the file); the attention scale 1 / sqrt(hidden / heads) of the 27B
 * models (46 and 62 layers), which llama.cpp derives from the model's size as the file does not hold
 * query_pre_attn_scalar.
 */
function ggufGemma(g: GgufFile, arch: Architecture, layers: number, hiddenPerHead: number): Partial<LlamaConfig> {
  if (arch !== 'gemma2' && arch !== 'gemma3') return {};
  const out: Partial<LlamaConfig> = {};
  const scale = ggufAttentionScale(arch, layers, hiddenPerHead);
  if (scale !== undefined) out.attentionScale = scale;
  if (arch === 'gemma3') out.slidingRopeTheta = GEMMA3_LOCAL_ROPE_THETA;
  // llama.cpp caps every Gemma 2 (50 and 30 where the file is silent), no Gemma 3
  const attnCap = arch === 'gemma2' ? metaNumber(g, `${arch}.attn_logit_softcapping`, 50) : 0;
  const finalCap = arch === 'gemma2' ? metaNumber(g, `${arch}.final_logit_softcapping`, 30) : 0;
  if (attnCap > 0) out.attnLogitSoftCap = attnCap;
  if (finalCap > 0) out.finalLogitSoftCap = finalCap;
  return out;
}

/**
 * A MoE's experts as llama.cpp's metadata gives them (`<arch>.expert_count`, `expert_used_count`): a Mixtral is a
 * `llama` with experts, its top-k weights renormalised (as OLMoE's are not, and Qwen3-MoE's are).
 */
function ggufMoe(g: GgufFile, arch: Architecture): Partial<LlamaConfig> {
  const experts = metaNumber(g, `${arch}.expert_count`, 0);
  if (experts === 0) {
    if (FAMILIES[arch].moeNames === 'mlp')
      throw new ModelFormatError(g.path, `metadata "${arch}.expert_count" is missing`);
    return {};
  }
  const shared = g.tensors.has('blk.0.ffn_up_shexp.weight');
  if (shared && arch !== 'qwen2moe')
    throw new MiniVllmError(`${g.path}: a shared expert is supported on qwen2moe only, not ${arch}`, 'ERR_UNSUPPORTED');
  return {
    moe: {
      numExperts: experts,
      topK: metaNumber(g, `${arch}.expert_used_count`),
      renormalize: FAMILIES[arch].moeRenormalize,
      // llama.cpp's default where the key is missing: the dense feed_forward_length
      ...(shared
        ? {
            sharedExpertSize: metaNumber(
              g,
              `${arch}.expert_shared_feed_forward_length`,
              metaNumber(g, `${arch}.feed_forward_length`),
            ),
          }
        : {}),
    },
  };
}

/** Expert `index` of a 3-D GGUF tensor [numExperts, rows, cols] (its rows are whole blocks). */
function expertSpan(g: GgufFile, t: GgufTensorInfo, index: number, experts: number): TensorSpan {
  if (t.shape.length !== 3 || t.shape[0] !== experts)
    throw new ModelFormatError(
      g.path,
      `tensor "${t.name}" must be [${experts}, rows, cols], got [${t.shape.join(', ')}]`,
    );
  const [, rows, cols] = t.shape as [number, number, number];
  const rowBytes =
    t.type in STORAGE_BYTES ? STORAGE_BYTES[t.type as StorageType] * cols : quantRowBytes(t.type as QuantType, cols);
  return { file: g.file, offset: t.offset + index * rows * rowBytes, shape: [rows, cols], type: t.type };
}

/** The config and weights of a GGUF file whose architecture is one lib/model/families.ts describes. */
export function ggufModel(g: GgufFile): { config: LlamaConfig; source: WeightSource } {
  const arch = g.metadata.get('general.architecture');
  if (!isArchitecture(arch))
    throw new MiniVllmError(
      `${g.path}: architecture ${JSON.stringify(arch)} is not supported (${Object.keys(FAMILIES).join(', ')})`,
      'ERR_UNSUPPORTED',
    );
  const family = FAMILIES[arch];
  const a = (k: string) => `${arch}.${k}`;
  const hidden = metaNumber(g, a('embedding_length'));
  const heads = metaNumber(g, a('attention.head_count'));
  const tokens = g.metadata.get('tokenizer.ggml.tokens');
  const embd = g.tensors.get('token_embd.weight');
  const vocab = metaNumber(g, a('vocab_size'), Array.isArray(tokens) ? tokens.length : embd?.shape[0]);
  // Qwen3 writes its head size (128 beside a hidden size of 1024 with 16 heads) as attention.key_length
  const headDim = metaNumber(g, a('attention.key_length'), hidden / heads);
  const valueDim = metaNumber(g, a('attention.value_length'), headDim);
  if (valueDim !== headDim)
    throw new MiniVllmError(
      `${g.path}: attention.value_length ${valueDim} differs from key_length ${headDim} (not supported)`,
      'ERR_UNSUPPORTED',
    );
  const ropeDim = metaNumber(g, a('rope.dimension_count'), headDim);
  const hasBias = g.tensors.has('blk.0.attn_q.bias');
  const layers = metaNumber(g, a('block_count'));
  // Gemma 2 defaults to a window of 4096 (llama.cpp); its and Gemma 3's layers slide in their family's pattern
  const window = metaNumber(g, a('attention.sliding_window'), arch === 'gemma2' ? 4096 : 0);
  const bos = g.metadata.get('tokenizer.ggml.bos_token_id');
  const eos = g.metadata.get('tokenizer.ggml.eos_token_id');
  const config = validateConfig(
    {
      vocabSize: vocab,
      hiddenSize: hidden,
      // Qwen3-MoE writes its experts' width as expert_feed_forward_length
      intermediateSize: metaNumber(g, a('expert_feed_forward_length'), metaNumber(g, a('feed_forward_length'), 0)),
      numLayers: layers,
      numHeads: heads,
      numKvHeads: metaNumber(g, a('attention.head_count_kv'), heads),
      headDim,
      maxPositionEmbeddings: metaNumber(g, a('context_length')),
      rmsNormEps: metaNumber(g, a('attention.layer_norm_rms_epsilon'), 1e-5),
      ropeTheta: metaNumber(g, a('rope.freq_base'), 10000),
      ropeScaling: ggufRopeScaling(g, arch, ropeDim),
      ...(ropeDim !== headDim ? { rotaryDim: ropeDim } : {}),
      // llama.cpp's converter permutes a Llama's q/k rows so that they rotate adjacent pairs; Qwen's keep the halves
      ropeStyle: family.ggufRopeStyle,
      tieWordEmbeddings: !g.tensors.has('output.weight'),
      bosTokenId: typeof bos === 'number' ? bos : null,
      eosTokenIds: typeof eos === 'number' ? [eos] : [],
      architecture: arch,
      attentionBias: family.attentionBias || hasBias,
      qkNorm: family.qkNorm,
      ...(window > 0 ? { slidingWindow: window } : {}),
      ...(window > 0 && family.slidingPattern > 0
        ? { slidingWindowLayers: patternLayers(family.slidingPattern, layers) }
        : {}),
      ...ggufGemma(g, arch, layers, hidden / heads),
      ...ggufMoe(g, arch),
    },
    g.path,
  );
  // every tensor the family has, found under llama.cpp's name and exposed under Hugging Face's (the classifier only
  // where the file has one)
  const byHf = new Map<string, TensorSpan>();
  for (const w of modelTensors(config, false))
    for (const p of w.parts) {
      const t = g.tensors.get(p.gguf);
      if (!t) continue;
      // Qwen2-MoE's shared-expert gate is a vector [hidden] in llama.cpp's files, a [1, hidden] matrix here
      const shape = t.shape.length === 1 && p.shape.length === 2 && p.shape[0] === 1 ? p.shape : t.shape;
      if (p.expert === undefined) byHf.set(p.hf, { file: g.file, offset: t.offset, shape, type: t.type });
      else byHf.set(p.hf, expertSpan(g, t, p.expert, config.moe!.numExperts));
    }
  const source = spanSource(g.path, byHf, () => g.file.close());
  return { config, source };
}
