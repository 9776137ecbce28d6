// The Llama-family model configuration, from a Hugging Face config.json, a llama2.c header, GGUF metadata or a
// dummy preset: one shape every loader fills and the forward pass reads.
import { MiniVllmError, ModelFormatError } from '../errors.js';
import type { RopeScaling } from '../rope.js';
import type { Architecture } from './families.js';

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
  /** RoPE base of the sliding-window layers, unscaled (Gemma 3's rope_local_base_freq); absent: ropeTheta. */
  slidingRopeTheta?: number;
  /** The attention's softmax scale (Gemma's query_pre_attn_scalar^-1/2); absent: 1 / sqrt(headDim). */
  attentionScale?: number;
  /** Gemma 2's soft-capping of the attention scores (attn_logit_softcapping): cap · tanh(s / cap). */
  attnLogitSoftCap?: number;
  /** Gemma 2's soft-capping of the final logits (final_logit_softcapping). */
  finalLogitSoftCap?: number;
  /** The file stores RMSNorm weights as w of (1 + w) (Gemma's Hugging Face files): the loader adds 1. */
  addUnitToNorms?: boolean;
  /** Mixture of Experts: every layer's MLP is numExperts experts of intermediateSize, topK of them a token. */
  moe?: MoeConfig;
}

export interface MoeConfig {
  numExperts: number;
  /** Experts a token is routed to (num_experts_per_tok). */
  topK: number;
  /** Whether the top-k weights are divided by their sum (Mixtral, Qwen3-MoE; not OLMoE): norm_topk_prob. */
  renormalize: boolean;
  /**
   * Qwen2-MoE's shared expert: every token also runs one SwiGLU MLP this wide (shared_expert_intermediate_size),
   * its output times sigmoid(shared_expert_gate · x) added to the routed experts'. Absent: none.
   */
  sharedExpertSize?: number;
}

/** The attention softmax scale of a config. */
export function attentionScale(c: LlamaConfig): number {
  return c.attentionScale ?? 1 / Math.sqrt(c.headDim);
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
  const s = c.ropeScaling;
  if (s?.type === 'longrope' || s?.type === 'freqFactors') {
    const lists = s.type === 'longrope' ? { shortFactors: s.shortFactors, longFactors: s.longFactors } : s;
    for (const [k, f] of Object.entries(lists))
      if (f instanceof Float32Array && (f.length !== rot / 2 || !f.every((x) => x > 0 && Number.isFinite(x))))
        throw new ModelFormatError(
          file,
          `RoPE ${k} must be ${rot / 2} positive numbers (rotaryDim / 2), got ${f.length}`,
        );
  }
  if (
    s?.type === 'longrope' &&
    !(Number.isSafeInteger(s.originalMaxPositionEmbeddings) && s.originalMaxPositionEmbeddings > 0)
  )
    throw new ModelFormatError(
      file,
      `LongRoPE's original context must be a positive integer, got ${s.originalMaxPositionEmbeddings}`,
    );
  const w = c.slidingWindow ?? 0;
  if (!Number.isSafeInteger(w) || w < 0)
    throw new ModelFormatError(file, `slidingWindow must be a non-negative integer, got ${String(w)}`);
  if (c.slidingWindowLayers?.some((i) => !Number.isInteger(i) || i < 0 || i >= c.numLayers))
    throw new ModelFormatError(file, `slidingWindowLayers must be layer indices below ${c.numLayers}`);
  for (const k of ['slidingRopeTheta', 'attentionScale', 'attnLogitSoftCap', 'finalLogitSoftCap'] as const) {
    const v = c[k];
    if (v !== undefined && !(v > 0 && Number.isFinite(v)))
      throw new ModelFormatError(file, `${k} must be a positive number, got ${String(v)}`);
  }
  const moe = c.moe;
  if (moe) {
    if (!Number.isInteger(moe.numExperts) || moe.numExperts < 1 || moe.numExperts > 256)
      throw new MiniVllmError(
        `${file}: ${String(moe.numExperts)} experts is not supported (1 to 256)`,
        'ERR_UNSUPPORTED',
      );
    if (!Number.isInteger(moe.topK) || moe.topK < 1 || moe.topK > Math.min(32, moe.numExperts))
      throw new ModelFormatError(
        file,
        `the experts per token must be in [1, ${Math.min(32, moe.numExperts)}], got ${moe.topK}`,
      );
    const s = moe.sharedExpertSize;
    if (s !== undefined && !(Number.isSafeInteger(s) && s > 0 && s < 2 ** 31))
      throw new ModelFormatError(file, `the shared expert's size must be a positive integer, got ${String(s)}`);
  }
  if (!(c.rmsNormEps > 0) || !Number.isFinite(c.rmsNormEps))
    throw new ModelFormatError(file, `rmsNormEps must be a positive number, got ${c.rmsNormEps}`);
  if (!(c.ropeTheta > 0) || !Number.isFinite(c.ropeTheta))
    throw new ModelFormatError(file, `ropeTheta must be a positive number, got ${c.ropeTheta}`);
  for (const id of [...c.eosTokenIds, ...(c.bosTokenId === null ? [] : [c.bosTokenId])])
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
      throw new ModelFormatError(file, `special token id ${id} is outside the vocabulary [0, ${c.vocabSize})`);
  return c;
}
