// The Llama-family model configuration, from a Hugging Face config.json, a llama2.c header, GGUF metadata or a
// dummy preset: one shape every loader fills and the forward pass reads.
import { MiniVllmError, ModelFormatError } from '../errors.js';
import { type RopeScaling, yarnAttentionFactor } from '../rope.js';
import { type Architecture, HF_ARCHITECTURES, isArchitecture } from './families.js';

export type { RopeScaling };

export type RopeStyle = 'neox' | 'gptj';

export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Frequency scaling from rope_scaling (Llama 3.1+: 'llama3'); absent or null = none. */
  ropeScaling?: RopeScaling | null;
  /** 'neox': rotate the two halves of each head (HF Llama); 'gptj': adjacent pairs (llama2.c, GGUF). */
  ropeStyle: RopeStyle;
  /** The classifier is the token embedding. */
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  /** Generation stops at any of these (llama2.c ends a story at BOS, so its list holds BOS). */
  eosTokenIds: number[];
  // ---- the family's description (lib/model/families.ts): what its forward adds to Llama's; absent = Llama's ----
  /** The architecture, as llama.cpp names it ('llama', 'qwen2', 'qwen3'). */
  architecture?: Architecture;
  /** The q, k and v projections have biases (Qwen2; a Llama config's attention_bias). */
  attentionBias?: boolean;
  /** RMSNorm of each q and k head, with weights [headDim], before RoPE (Qwen3). */
  qkNorm?: boolean;
  /** RoPE rotates the first rotaryDim elements of each head (Phi-4-mini's partial_rotary_factor); absent: all. */
  rotaryDim?: number;
  /** A sliding window of attention (Mistral, Phi-3, Qwen2's use_sliding_window): each token sees this many keys. */
  slidingWindow?: number;
  /** The layers that use the window (absent: every layer, where slidingWindow is set). */
  slidingWindowLayers?: number[];
}

/** The window of layer i: the config's sliding window where that layer has one, else 0 (the whole context). */
export function layerWindow(c: LlamaConfig, i: number): number {
  const w = c.slidingWindow ?? 0;
  return w > 0 && (c.slidingWindowLayers === undefined || c.slidingWindowLayers.includes(i)) ? w : 0;
}

/** Throws a ModelFormatError (naming `file`) unless the config describes a model the forward pass can run. */
export function validateConfig(c: LlamaConfig, file: string): LlamaConfig {
  const positive = [
    'vocabSize',
    'hiddenSize',
    'intermediateSize',
    'numLayers',
    'numHeads',
    'numKvHeads',
    'headDim',
    'maxPositionEmbeddings',
  ] as const;
  for (const k of positive) {
    const v = c[k];
    if (!Number.isSafeInteger(v) || v <= 0 || v > 2 ** 31 - 1)
      throw new ModelFormatError(file, `${k} must be a positive integer, got ${String(v)}`);
  }
  // the RoPE table holds every position (ropeCosSinCache's limit): a corrupt context length is refused here
  if (c.maxPositionEmbeddings > 2 ** 24)
    throw new ModelFormatError(file, `maxPositionEmbeddings ${c.maxPositionEmbeddings} is above 2^24`);
  if (c.numHeads % c.numKvHeads !== 0)
    throw new ModelFormatError(file, `numHeads (${c.numHeads}) must be a multiple of numKvHeads (${c.numKvHeads})`);
  if (c.headDim % 8 !== 0 || c.headDim > 256)
    throw new MiniVllmError(
      `${file}: headDim ${c.headDim} is not supported (a multiple of 8, at most 256)`,
      'ERR_UNSUPPORTED',
    );
  const rot = c.rotaryDim ?? c.headDim;
  if (!Number.isInteger(rot) || rot < 2 || rot % 2 !== 0 || rot > c.headDim)
    throw new ModelFormatError(file, `rotaryDim must be even, in [2, headDim = ${c.headDim}], got ${String(rot)}`);
  const w = c.slidingWindow ?? 0;
  if (!Number.isSafeInteger(w) || w < 0)
    throw new ModelFormatError(file, `slidingWindow must be a non-negative integer, got ${String(w)}`);
  if (c.slidingWindowLayers?.some((i) => !Number.isInteger(i) || i < 0 || i >= c.numLayers))
    throw new ModelFormatError(file, `slidingWindowLayers must be layer indices below ${c.numLayers}`);
  if (!(c.rmsNormEps > 0) || !Number.isFinite(c.rmsNormEps))
    throw new ModelFormatError(file, `rmsNormEps must be a positive number, got ${c.rmsNormEps}`);
  if (!(c.ropeTheta > 0) || !Number.isFinite(c.ropeTheta))
    throw new ModelFormatError(file, `ropeTheta must be a positive number, got ${c.ropeTheta}`);
  for (const id of [...c.eosTokenIds, ...(c.bosTokenId === null ? [] : [c.bosTokenId])])
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
      throw new ModelFormatError(file, `special token id ${id} is outside the vocabulary [0, ${c.vocabSize})`);
  return c;
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

function parseRopeScaling(v: unknown, file: string, maxPositionEmbeddings: number): RopeScaling | null {
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
  throw new MiniVllmError(
    `${file}: rope_scaling type ${JSON.stringify(type)} is not supported yet (linear, llama3, yarn)`,
    'ERR_UNSUPPORTED',
  );
}

/** A Hugging Face config.json of a family lib/model/families.ts describes (Llama, Mistral, Qwen2, Qwen3). */
export function configFromHf(json: unknown, file: string): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ModelFormatError(file, 'config.json must hold a JSON object');
  const j = json as Record<string, unknown>;
  const archs = j['architectures'];
  const names = Object.keys(HF_ARCHITECTURES);
  const modelType = j['model_type'];
  const hfArch = Array.isArray(archs)
    ? (archs as unknown[]).find((a) => names.includes(a as string))
    : (names.find((n) => isArchitecture(modelType) && HF_ARCHITECTURES[n]!.architecture === modelType) ??
      'LlamaForCausalLM');
  if (hfArch === undefined)
    throw new MiniVllmError(
      `${file}: architecture ${JSON.stringify(archs)} is not supported (${names.join(', ')})`,
      'ERR_UNSUPPORTED',
    );
  const family = HF_ARCHITECTURES[hfArch as string]!;
  const act = j['hidden_act'] ?? 'silu';
  if (act !== 'silu')
    throw new MiniVllmError(`${file}: hidden_act ${JSON.stringify(act)} is not supported (silu)`, 'ERR_UNSUPPORTED');
  const ropeScaling = parseRopeScaling(j['rope_scaling'], file, int(j, 'max_position_embeddings', file, 2048));
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
      ...hfSlidingWindow(j, family.architecture, numLayers, file),
      ...(partial < 1 ? { rotaryDim: Math.floor(headDim * partial) } : {}),
      vocabSize: int(j, 'vocab_size', file),
      hiddenSize,
      intermediateSize: int(j, 'intermediate_size', file),
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
  arch: Architecture,
  numLayers: number,
  file: string,
): Pick<LlamaConfig, 'slidingWindow' | 'slidingWindowLayers'> {
  const w = j['sliding_window'];
  const qwen = arch === 'qwen2' || arch === 'qwen3';
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
  if (qwen) {
    const from = int(j, 'max_window_layers', file, 0);
    const layers = Array.from({ length: numLayers }, (_, i) => i).filter((i) => i >= from);
    return layers.length ? { slidingWindow: w, slidingWindowLayers: layers } : {};
  }
  return { slidingWindow: w };
}

/** The config.json a Hugging Face Llama with this config would carry (used to write test models). */
export function configToHf(c: LlamaConfig): Record<string, unknown> {
  const hf = Object.entries(HF_ARCHITECTURES).find(([, f]) => f.architecture === (c.architecture ?? 'llama'))!;
  return {
    architectures: [hf[0]],
    model_type: hf[1].architecture,
    hidden_act: 'silu',
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
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
    torch_dtype: 'float32',
  };
}

function ropeScalingToHf(s: RopeScaling | null): Record<string, unknown> | null {
  if (s === null) return null;
  if (s.type === 'linear') return { rope_type: 'linear', factor: s.factor };
  if (s.type === 'freqFactors') throw new RangeError('configToHf: GGUF rope_freqs have no config.json form');
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

/** Parameters of the model (embedding, layers with their biases and q/k norms, final norm, an untied classifier). */
export function parameterCount(c: LlamaConfig): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const layer =
    c.hiddenSize * (q + 2 * kv) +
    q * c.hiddenSize +
    3 * c.hiddenSize * c.intermediateSize +
    2 * c.hiddenSize +
    (c.attentionBias ? q + 2 * kv : 0) +
    (c.qkNorm ? 2 * c.headDim : 0);
  return c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * layer + c.hiddenSize;
}
