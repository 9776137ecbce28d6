// A Hugging Face config.json as a LlamaConfig (and back, to write test models): the families lib/model/families.ts
// describes, their RoPE scalings and sliding windows.
import { MiniVllmError, ModelFormatError } from '../errors.js';
import { longRopeAttentionFactor, type RopeScaling, yarnAttentionFactor } from '../rope.js';
import { type LlamaConfig, validateConfig } from './config.js';
import { type Architecture, type Family, HF_ARCHITECTURES, patternLayers } from './families.js';

/** config.json's model_type of each family, where it is not the architecture's name. */
const MODEL_TYPES: Partial<Record<Architecture, string>> = {
  gemma3: 'gemma3_text',
  qwen2moe: 'qwen2_moe',
  qwen3moe: 'qwen3_moe',
};

/** The model_type of a Hugging Face architecture name. */
function hfModelType(name: string): string {
  if (name === 'MixtralForCausalLM') return 'mixtral';
  const a = HF_ARCHITECTURES[name]!.architecture;
  return MODEL_TYPES[a] ?? a;
}

function int(json: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = json[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new ModelFormatError(file, `"${key}" must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

function num(json: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = json[key] ?? fallback;
  if (typeof v !== 'number') throw new ModelFormatError(file, `"${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function parseRopeScaling(j: Record<string, unknown>, file: string): RopeScaling | null {
  const v = j['rope_scaling'];
  const maxPositionEmbeddings = int(j, 'max_position_embeddings', file, 2048);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v))
    throw new ModelFormatError(file, `"rope_scaling" must be an object or null, got ${JSON.stringify(v)}`);
  const s = v as Record<string, unknown>;
  const type = s['rope_type'] ?? s['type'];
  const pos = (k: string) => {
    const x = s[k];
    if (typeof x !== 'number' || !(x > 0) || !Number.isFinite(x))
      throw new ModelFormatError(file, `rope_scaling.${k} must be a positive number, got ${JSON.stringify(x)}`);
    return x;
  };
  if (type === 'default') return null;
  if (type === 'linear') return { type: 'linear', factor: pos('factor') };
  if (type === 'llama3') {
    const r: RopeScaling = {
      type: 'llama3',
      factor: pos('factor'),
      lowFreqFactor: pos('low_freq_factor'),
      highFreqFactor: pos('high_freq_factor'),
      originalMaxPositionEmbeddings: pos('original_max_position_embeddings'),
    };
    if (r.highFreqFactor <= r.lowFreqFactor)
      throw new ModelFormatError(
        file,
        `rope_scaling.high_freq_factor (${r.highFreqFactor}) must exceed low_freq_factor (${r.lowFreqFactor})`,
      );
    return r;
  }
  if (type === 'yarn') {
    for (const k of ['mscale', 'mscale_all_dim'])
      if (s[k] !== undefined && s[k] !== null)
        throw new MiniVllmError(`${file}: rope_scaling.${k} (DeepSeek's YaRN) is not supported`, 'ERR_UNSUPPORTED');
    const opt = (k: string, fallback: number) => (s[k] === undefined || s[k] === null ? fallback : pos(k));
    const factor = pos('factor');
    return {
      type: 'yarn',
      factor,
      originalMaxPositionEmbeddings: opt('original_max_position_embeddings', maxPositionEmbeddings),
      betaFast: opt('beta_fast', 32),
      betaSlow: opt('beta_slow', 1),
      attentionFactor: opt('attention_factor', yarnAttentionFactor(factor)),
    };
  }
  if (type === 'longrope' || type === 'su') return parseLongRope(s, j, file, maxPositionEmbeddings);
  throw new MiniVllmError(
    `${file}: rope_scaling type ${JSON.stringify(type)} is not supported yet (linear, llama3, yarn, longrope)`,
    'ERR_UNSUPPORTED',
  );
}

/**
 * Phi-3's LongRoPE: short_factor and long_factor, the original context from the config's top level (Phi-3) or
 * rope_scaling, the attention factor given or Hugging Face's default from max_position_embeddings / original.
 */
function parseLongRope(
  s: Record<string, unknown>,
  j: Record<string, unknown>,
  file: string,
  maxPositionEmbeddings: number,
): RopeScaling {
  for (const k of ['short_mscale', 'long_mscale'])
    if (s[k] !== undefined && s[k] !== null)
      throw new MiniVllmError(
        `${file}: rope_scaling.${k} (Phi-3.5-MoE's LongRoPE) is not supported`,
        'ERR_UNSUPPORTED',
      );
  const factors = (k: string) => {
    const x = s[k];
    if (!Array.isArray(x) || !x.every((f) => typeof f === 'number' && f > 0 && Number.isFinite(f)))
      throw new ModelFormatError(
        file,
        `rope_scaling.${k} must be a list of positive numbers, got ${JSON.stringify(x)}`,
      );
    return Float32Array.from(x as number[]);
  };
  const original =
    j['original_max_position_embeddings'] !== undefined
      ? int(j, 'original_max_position_embeddings', file)
      : int(s, 'original_max_position_embeddings', file, maxPositionEmbeddings);
  if (original < 1)
    throw new ModelFormatError(file, `"original_max_position_embeddings" must be positive, got ${original}`);
  const given = s['attention_factor'];
  if (given !== undefined && given !== null && !(typeof given === 'number' && given > 0 && Number.isFinite(given)))
    throw new ModelFormatError(
      file,
      `rope_scaling.attention_factor must be a positive number, got ${JSON.stringify(given)}`,
    );
  return {
    type: 'longrope',
    shortFactors: factors('short_factor'),
    longFactors: factors('long_factor'),
    originalMaxPositionEmbeddings: original,
    attentionFactor: typeof given === 'number' ? given : longRopeAttentionFactor(maxPositionEmbeddings, original),
  };
}

/** Gemma3TextConfig's defaults: a multimodal Gemma 3's text_config lists only what differs (the 4B's, five keys). */
const GEMMA3_TEXT_DEFAULTS = {
  vocab_size: 262208,
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  sliding_window_pattern: 6,
  rope_local_base_freq: 10000,
  hidden_activation: 'gelu_pytorch_tanh',
  tie_word_embeddings: true,
  bos_token_id: 2,
  eos_token_id: 1,
};

/**
 * Gemma 3's multimodal checkpoints (Gemma3ForConditionalGeneration: the 4B, 12B, 27B) as their text model: text_config
 * over Gemma3TextConfig's defaults, the special ids from the outer config where text_config has none. Their weights
 * are under the language model's prefix (languageModelSource); the vision tower is not loaded.
 */
function gemma3Text(j: Record<string, unknown>, file: string): Record<string, unknown> {
  const archs = j['architectures'];
  if (!Array.isArray(archs) || !archs.includes('Gemma3ForConditionalGeneration')) return j;
  const t = j['text_config'];
  if (typeof t !== 'object' || t === null || Array.isArray(t))
    throw new ModelFormatError(
      file,
      `Gemma3ForConditionalGeneration needs a "text_config" object, got ${JSON.stringify(t)}`,
    );
  const outer = Object.fromEntries(
    ['bos_token_id', 'eos_token_id', 'tie_word_embeddings'].filter((k) => j[k] !== undefined).map((k) => [k, j[k]]),
  );
  return { ...GEMMA3_TEXT_DEFAULTS, ...outer, ...t, architectures: ['Gemma3ForCausalLM'], model_type: 'gemma3_text' };
}

/** A Hugging Face config.json of a family lib/model/families.ts describes (Llama, Mistral, Qwen2, Qwen3). */
export function configFromHf(json: unknown, file: string): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ModelFormatError(file, 'config.json must hold a JSON object');
  const j = gemma3Text(json as Record<string, unknown>, file);
  const archs = j['architectures'];
  const names = Object.keys(HF_ARCHITECTURES);
  const modelType = j['model_type'];
  const hfArch = Array.isArray(archs)
    ? (archs as unknown[]).find((a) => names.includes(a as string))
    : (names.find((n) => hfModelType(n) === modelType) ?? 'LlamaForCausalLM');
  if (hfArch === undefined)
    throw new MiniVllmError(
      `${file}: architecture ${JSON.stringify(archs)} is not supported (${names.join(', ')})`,
      'ERR_UNSUPPORTED',
    );
  const family = HF_ARCHITECTURES[hfArch as string]!;
  // Gemma names its activation hidden_activation (gelu_pytorch_tanh: GELU's tanh form)
  const act =
    j['hidden_activation'] ?? j['hidden_act'] ?? (family.activation === 'silu' ? 'silu' : 'gelu_pytorch_tanh');
  const acts = family.activation === 'silu' ? ['silu'] : ['gelu_pytorch_tanh', 'gelu_tanh'];
  if (!acts.includes(act as string))
    throw new MiniVllmError(
      `${file}: hidden activation ${JSON.stringify(act)} is not supported for ${hfArch as string} (${acts.join(', ')})`,
      'ERR_UNSUPPORTED',
    );
  const ropeScaling = parseRopeScaling(j, file);
  if (j['mlp_bias'] === true) throw new MiniVllmError(`${file}: mlp_bias is not supported yet`, 'ERR_UNSUPPORTED');
  const hiddenSize = int(j, 'hidden_size', file);
  const numHeads = int(j, 'num_attention_heads', file);
  const eos = j['eos_token_id'];
  const eosTokenIds = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  if (!eosTokenIds.every((e) => Number.isInteger(e)))
    throw new ModelFormatError(
      file,
      `"eos_token_id" must be an integer or a list of integers, got ${JSON.stringify(eos)}`,
    );
  const bos = j['bos_token_id'];
  if (bos !== undefined && bos !== null && !Number.isInteger(bos))
    throw new ModelFormatError(file, `"bos_token_id" must be an integer, got ${JSON.stringify(bos)}`);
  const numLayers = int(j, 'num_hidden_layers', file);
  const headDim = int(j, 'head_dim', file, Math.floor(hiddenSize / numHeads));
  const partial = num(j, 'partial_rotary_factor', file, 1);
  if (!(partial > 0 && partial <= 1))
    throw new ModelFormatError(file, `"partial_rotary_factor" must be in (0, 1], got ${partial}`);
  return validateConfig(
    {
      ...hfSlidingWindow(j, family, numLayers, file),
      ...hfGemma(j, family, file),
      ...hfMoe(j, hfArch as string, family, file),
      ...(partial < 1 ? { rotaryDim: Math.floor(headDim * partial) } : {}),
      vocabSize: int(j, 'vocab_size', file),
      hiddenSize,
      // a Qwen-MoE's experts are moe_intermediate_size wide (its intermediate_size is a dense layer's)
      intermediateSize: int(j, 'moe_intermediate_size', file, int(j, 'intermediate_size', file)),
      numLayers,
      numHeads,
      numKvHeads: int(j, 'num_key_value_heads', file, numHeads),
      headDim,
      maxPositionEmbeddings: int(j, 'max_position_embeddings', file, 2048),
      rmsNormEps: num(j, 'rms_norm_eps', file, 1e-6),
      ropeTheta: num(j, 'rope_theta', file, 10000),
      ropeScaling,
      ropeStyle: 'neox',
      tieWordEmbeddings: j['tie_word_embeddings'] === true,
      bosTokenId: (bos as number | undefined) ?? null,
      eosTokenIds: eosTokenIds as number[],
      architecture: family.architecture,
      attentionBias: family.attentionBias || j['attention_bias'] === true,
      qkNorm: family.qkNorm,
    },
    file,
  );
}

/**
 * A config.json's sliding window: `layer_types` where given (newer configs), else Qwen's use_sliding_window from
 * max_window_layers on, else Mistral's and Phi-3's sliding_window on every layer. A window of 0 or one at least
 * max_position_embeddings is none.
 */
function hfSlidingWindow(
  j: Record<string, unknown>,
  family: Family,
  numLayers: number,
  file: string,
): Pick<LlamaConfig, 'slidingWindow' | 'slidingWindowLayers'> {
  const w = j['sliding_window'];
  const qwen = family.architecture.startsWith('qwen');
  if (w === undefined || w === null || (qwen && j['use_sliding_window'] !== true)) return {};
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 0)
    throw new ModelFormatError(file, `"sliding_window" must be a non-negative integer, got ${JSON.stringify(w)}`);
  if (w === 0) return {};
  const types = j['layer_types'];
  if (Array.isArray(types)) {
    if (types.length !== numLayers || !types.every((t) => t === 'sliding_attention' || t === 'full_attention'))
      throw new ModelFormatError(
        file,
        `"layer_types" must list ${numLayers} of "sliding_attention" / "full_attention", got ${JSON.stringify(types)}`,
      );
    const layers = types.flatMap((t, i) => (t === 'sliding_attention' ? [i] : []));
    return layers.length ? { slidingWindow: w, slidingWindowLayers: layers } : {};
  }
  if (family.slidingPattern > 0) {
    // Gemma's configs before layer_types: Gemma 2 slides on even layers, Gemma 3 on all but every
    // sliding_window_pattern-th
    const pattern = int(j, 'sliding_window_pattern', file, family.slidingPattern);
    if (pattern < 1) throw new ModelFormatError(file, `"sliding_window_pattern" must be positive, got ${pattern}`);
    return { slidingWindow: w, slidingWindowLayers: patternLayers(pattern, numLayers) };
  }
  if (qwen) {
    const from = int(j, 'max_window_layers', file, 0);
    const layers = Array.from({ length: numLayers }, (_, i) => i).filter((i) => i >= from);
    return layers.length ? { slidingWindow: w, slidingWindowLayers: layers } : {};
  }
  return { slidingWindow: w };
}

/**
 * A Mixture of Experts: Mixtral's num_local_experts, Qwen-MoE's and OLMoE's num_experts; num_experts_per_tok; the
 * weights renormalised as norm_topk_prob says (Mixtral always); Qwen2-MoE's shared expert
 * (shared_expert_intermediate_size). Every layer sparse: a Qwen-MoE with dense layers (decoder_sparse_step,
 * mlp_only_layers) is refused.
 */
function hfMoe(j: Record<string, unknown>, hfArch: string, family: Family, file: string): Partial<LlamaConfig> {
  const mixtral = hfArch === 'MixtralForCausalLM';
  if (!mixtral && family.moeNames !== 'mlp') return {};
  const numExperts = int(j, mixtral ? 'num_local_experts' : 'num_experts', file);
  const step = j['decoder_sparse_step'] ?? 1;
  const dense = j['mlp_only_layers'];
  if (step !== 1 || (Array.isArray(dense) && dense.length > 0))
    throw new MiniVllmError(`${file}: a MoE with dense MLP layers is not supported yet`, 'ERR_UNSUPPORTED');
  const shared = int(j, 'shared_expert_intermediate_size', file, 0);
  if (shared !== 0 && family.architecture !== 'qwen2moe')
    throw new MiniVllmError(
      `${file}: a shared expert is supported on Qwen2MoeForCausalLM only, not on ${hfArch}`,
      'ERR_UNSUPPORTED',
    );
  if (j['clip_qkv'] !== undefined && j['clip_qkv'] !== null)
    throw new MiniVllmError(`${file}: clip_qkv is not supported`, 'ERR_UNSUPPORTED');
  const norm = j['norm_topk_prob'];
  if (norm !== undefined && typeof norm !== 'boolean')
    throw new ModelFormatError(file, `"norm_topk_prob" must be a boolean, got ${JSON.stringify(norm)}`);
  return {
    moe: {
      numExperts,
      topK: int(j, 'num_experts_per_tok', file),
      renormalize: mixtral || (norm ?? family.moeRenormalize),
      ...(shared > 0 ? { sharedExpertSize: shared } : {}),
    },
  };
}

/** Gemma's numbers: its attention scale, soft-caps, local RoPE base; its norms' (1 + w). */
function hfGemma(j: Record<string, unknown>, family: Family, file: string): Partial<LlamaConfig> {
  if (!family.unitOffsetNorms) return {};
  const opt = (k: string) => (j[k] === undefined || j[k] === null ? undefined : num(j, k, file));
  const scalar = opt('query_pre_attn_scalar');
  const out: Partial<LlamaConfig> = { addUnitToNorms: true };
  if (scalar !== undefined) out.attentionScale = 1 / Math.sqrt(scalar);
  const [attnCap, finalCap, local] = [
    opt('attn_logit_softcapping'),
    opt('final_logit_softcapping'),
    opt('rope_local_base_freq'),
  ];
  if (attnCap !== undefined) out.attnLogitSoftCap = attnCap;
  if (finalCap !== undefined) out.finalLogitSoftCap = finalCap;
  if (local !== undefined) out.slidingRopeTheta = local;
  return out;
}

/** The config.json a Hugging Face Llama with this config would carry (used to write test models). */
export function configToHf(c: LlamaConfig): Record<string, unknown> {
  // a Llama with experts is a Mixtral
  const hf: [string, Family] =
    c.moe && (c.architecture ?? 'llama') === 'llama'
      ? ['MixtralForCausalLM', HF_ARCHITECTURES['MixtralForCausalLM']!]
      : Object.entries(HF_ARCHITECTURES).find(([, f]) => f.architecture === (c.architecture ?? 'llama'))!;
  const gemma = hf[1].unitOffsetNorms;
  return {
    architectures: [hf[0]],
    model_type: hfModelType(hf[0]),
    [gemma ? 'hidden_activation' : 'hidden_act']: hf[1].activation === 'silu' ? 'silu' : 'gelu_pytorch_tanh',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScalingToHf(c.ropeScaling ?? null),
    tie_word_embeddings: c.tieWordEmbeddings,
    ...(c.attentionBias && !hf[1].attentionBias ? { attention_bias: true } : {}),
    ...(c.rotaryDim !== undefined && c.rotaryDim !== c.headDim
      ? { partial_rotary_factor: c.rotaryDim / c.headDim }
      : {}),
    ...(c.slidingWindow
      ? {
          sliding_window: c.slidingWindow,
          ...(c.slidingWindowLayers
            ? {
                layer_types: Array.from({ length: c.numLayers }, (_, i) =>
                  c.slidingWindowLayers!.includes(i) ? 'sliding_attention' : 'full_attention',
                ),
              }
            : {}),
          ...(hf[1].architecture !== 'llama' ? { use_sliding_window: true } : {}),
        }
      : {}),
    ...(c.moe ? moeToHf(c, hf[0]) : {}),
    ...(c.attentionScale !== undefined ? { query_pre_attn_scalar: c.attentionScale ** -2 } : {}),
    ...(c.attnLogitSoftCap !== undefined ? { attn_logit_softcapping: c.attnLogitSoftCap } : {}),
    ...(c.finalLogitSoftCap !== undefined ? { final_logit_softcapping: c.finalLogitSoftCap } : {}),
    ...(c.slidingRopeTheta !== undefined ? { rope_local_base_freq: c.slidingRopeTheta } : {}),
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
    torch_dtype: 'float32',
  };
}

function moeToHf(c: LlamaConfig, hfArch: string): Record<string, unknown> {
  const m = c.moe!;
  if (hfArch === 'MixtralForCausalLM') return { num_local_experts: m.numExperts, num_experts_per_tok: m.topK };
  return {
    num_experts: m.numExperts,
    num_experts_per_tok: m.topK,
    norm_topk_prob: m.renormalize,
    moe_intermediate_size: c.intermediateSize,
    ...(m.sharedExpertSize ? { shared_expert_intermediate_size: m.sharedExpertSize } : {}),
  };
}

function ropeScalingToHf(s: RopeScaling | null): Record<string, unknown> | null {
  if (s === null) return null;
  if (s.type === 'linear') return { rope_type: 'linear', factor: s.factor };
  if (s.type === 'freqFactors') throw new RangeError('configToHf: GGUF rope_freqs have no config.json form');
  if (s.type === 'longrope')
    return {
      rope_type: 'longrope',
      short_factor: [...s.shortFactors],
      long_factor: [...s.longFactors],
      original_max_position_embeddings: s.originalMaxPositionEmbeddings,
      attention_factor: s.attentionFactor,
    };
  if (s.type === 'yarn')
    return {
      rope_type: 'yarn',
      factor: s.factor,
      original_max_position_embeddings: s.originalMaxPositionEmbeddings,
      beta_fast: s.betaFast,
      beta_slow: s.betaSlow,
      attention_factor: s.attentionFactor,
    };
  return {
    rope_type: 'llama3',
    factor: s.factor,
    low_freq_factor: s.lowFreqFactor,
    high_freq_factor: s.highFreqFactor,
    original_max_position_embeddings: s.originalMaxPositionEmbeddings,
  };
}
