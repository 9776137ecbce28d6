// A GGUF file as a model: the config from its `<architecture>.*` metadata (llama, qwen2, qwen3), and its tensors under
// Hugging Face names.
// The file format itself is lib/formats/gguf.ts.
import { MiniVllmError, ModelFormatError } from '../errors.js';
import { readFloats, type TensorSpan, spanSource, type WeightSource } from '../formats/file.js';
import type { GgufFile } from '../formats/gguf.js';
import { type RopeScaling, yarnAttentionFactor } from '../rope.js';
import { type LlamaConfig, validateConfig } from './config.js';
import { FAMILIES, isArchitecture } from './families.js';
import { hfName } from './weights.js';

/** llama.cpp's tensor names -> Hugging Face's; a fused family's attn_qkv and ffn_up (gate and up) by their own. */
const GGUF_FUSED: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^blk\.(\d+)\.attn_qkv\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.qkv_proj')],
  [/^blk\.(\d+)\.ffn_up\.weight$/, (m) => hfName.layer(+m[1]!, 'mlp.gate_up_proj')],
];
const GGUF_NAMES: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^token_embd\.weight$/, () => hfName.embedding],
  [/^output_norm\.weight$/, () => hfName.norm],
  [/^output\.weight$/, () => hfName.lmHead],
  [/^blk\.(\d+)\.attn_norm\.weight$/, (m) => hfName.layer(+m[1]!, 'input_layernorm')],
  [/^blk\.(\d+)\.attn_q\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.q_proj')],
  [/^blk\.(\d+)\.attn_k\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.k_proj')],
  [/^blk\.(\d+)\.attn_v\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.v_proj')],
  [/^blk\.(\d+)\.attn_output\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.o_proj')],
  [/^blk\.(\d+)\.ffn_norm\.weight$/, (m) => hfName.layer(+m[1]!, 'post_attention_layernorm')],
  [/^blk\.(\d+)\.ffn_gate\.weight$/, (m) => hfName.layer(+m[1]!, 'mlp.gate_proj')],
  [/^blk\.(\d+)\.ffn_up\.weight$/, (m) => hfName.layer(+m[1]!, 'mlp.up_proj')],
  [/^blk\.(\d+)\.ffn_down\.weight$/, (m) => hfName.layer(+m[1]!, 'mlp.down_proj')],
  [/^blk\.(\d+)\.attn_q\.bias$/, (m) => hfName.layerBias(+m[1]!, 'self_attn.q_proj')],
  [/^blk\.(\d+)\.attn_k\.bias$/, (m) => hfName.layerBias(+m[1]!, 'self_attn.k_proj')],
  [/^blk\.(\d+)\.attn_v\.bias$/, (m) => hfName.layerBias(+m[1]!, 'self_attn.v_proj')],
  [/^blk\.(\d+)\.attn_q_norm\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.q_norm')],
  [/^blk\.(\d+)\.attn_k_norm\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.k_norm')],
];

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
  if (g.tensors.has('rope_factors_long.weight') || g.tensors.has('rope_factors_short.weight'))
    throw new MiniVllmError(
      `${g.path}: Phi-3's LongRoPE scaling (rope_factors_long / rope_factors_short) is not supported yet`,
      'ERR_UNSUPPORTED',
    );
  const freqs = g.tensors.get('rope_freqs.weight');
  if (freqs) {
    if (freqs.type !== 'F32' || freqs.shape.length !== 1 || freqs.shape[0] !== headDim / 2)
      throw new ModelFormatError(
        g.path,
        `rope_freqs.weight must be F32 [${headDim / 2}], got ${freqs.type} [${freqs.shape.join(', ')}]`,
      );
    const factors = Float32Array.from(readFloats(g.file, freqs.offset, headDim / 2, 'F32', freqs.name));
    if (!factors.every((f) => f > 0 && Number.isFinite(f)))
      throw new ModelFormatError(g.path, 'rope_freqs.weight must hold positive finite factors');
    return { type: 'freqFactors', factors };
  }
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
  const window = metaNumber(g, a('attention.sliding_window'), 0);
  const bos = g.metadata.get('tokenizer.ggml.bos_token_id');
  const eos = g.metadata.get('tokenizer.ggml.eos_token_id');
  const config = validateConfig(
    {
      vocabSize: vocab,
      hiddenSize: hidden,
      intermediateSize: metaNumber(g, a('feed_forward_length')),
      numLayers: metaNumber(g, a('block_count')),
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
    },
    g.path,
  );
  const byHf = new Map<string, TensorSpan>();
  const names = family.fused ? [...GGUF_FUSED, ...GGUF_NAMES] : GGUF_NAMES;
  for (const t of g.tensors.values()) {
    for (const [re, to] of names) {
      const m = t.name.match(re);
      if (m) {
        byHf.set(to(m), { file: g.file, offset: t.offset, shape: t.shape, type: t.type });
        break;
      }
    }
  }
  const source = spanSource(g.path, byHf, () => g.file.close());
  return { config, source };
}
