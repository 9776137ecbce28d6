// The model families the one forward pass (lib/model/llama.ts) runs: each a small description of what it adds to
// Llama's layer, read by the config loaders (Hugging Face config.json, GGUF metadata, dummy presets), the weight
// layout (lib/model/open.ts) and the forward. Adding a family is a row here and its tensors' names, not a new forward.

/** An architecture as llama.cpp's GGUF files name it (`general.architecture`). */
export type Architecture =
  'llama' | 'qwen2' | 'qwen3' | 'phi3' | 'gemma2' | 'gemma3' | 'qwen2moe' | 'qwen3moe' | 'olmoe';

export interface Family {
  architecture: Architecture;
  /** q, k and v projections have biases. */
  attentionBias: boolean;
  /** Each q and k head is RMS-normalised (weights [headDim]) before RoPE. */
  qkNorm: boolean;
  /** What the q/k norm spans: each head (Qwen3, Gemma 3), or the whole projection (OLMoE: [numHeads headDim]). */
  qkNormOver: 'head' | 'projection';
  /**
   * RoPE pairs in the family's GGUF files: 'gptj' where llama.cpp's converter permutes q/k rows (Llama), 'neox' where
   * it keeps Hugging Face's halves (Qwen).
   */
  ggufRopeStyle: 'neox' | 'gptj';
  /** q, k and v are one tensor (qkv_proj; GGUF attn_qkv), and gate and up another (gate_up_proj; GGUF ffn_up). */
  fused: boolean;
  /** The MLP's gate activation: SiLU (Llama), or GELU with tanh (Gemma's gelu_pytorch_tanh). */
  activation: 'silu' | 'gelu_tanh';
  /**
   * Gemma's sandwich: the attention's and the MLP's outputs are RMS-normalised (post_attention_layernorm,
   * post_feedforward_layernorm) before they join the residual, and the MLP's input norm is pre_feedforward_layernorm.
   */
  sandwichNorms: boolean;
  /** Gemma: the token embeddings are multiplied by sqrt(hidden) (the tied classifier reads them unscaled). */
  scaleEmbedding: boolean;
  /** Gemma: RMSNorm multiplies by (1 + w); Hugging Face files store w, llama.cpp's converter 1 + w. */
  unitOffsetNorms: boolean;
  /**
   * The layers with the sliding window where a file does not list them: every `n`th layer is global, the others
   * slide (Gemma 2: 2, even layers slide; Gemma 3: 6, five local to one global). 0: the window is on every layer.
   */
  slidingPattern: number;
  /**
   * The Mixture-of-Experts tensors' Hugging Face names: Mixtral's (block_sparse_moe.gate, experts.j.w1/w3/w2) or
   * Qwen-MoE's and OLMoE's (mlp.gate, mlp.experts.j.gate_proj/up_proj/down_proj). Whether a model is one is its
   * config's (a GGUF Mixtral is a `llama` with experts).
   */
  moeNames: 'mixtral' | 'mlp';
  /** Whether a MoE's top-k weights are divided by their sum when its file does not say (norm_topk_prob). */
  moeRenormalize: boolean;
}

const LLAMA: Omit<Family, 'architecture'> = {
  attentionBias: false,
  qkNorm: false,
  qkNormOver: 'head',
  ggufRopeStyle: 'gptj',
  fused: false,
  activation: 'silu',
  sandwichNorms: false,
  scaleEmbedding: false,
  unitOffsetNorms: false,
  slidingPattern: 0,
  moeNames: 'mixtral',
  moeRenormalize: true,
};
const GEMMA = {
  ...LLAMA,
  ggufRopeStyle: 'neox',
  activation: 'gelu_tanh',
  sandwichNorms: true,
  scaleEmbedding: true,
  unitOffsetNorms: true,
} as const;

export const FAMILIES: Record<Architecture, Family> = {
  llama: { ...LLAMA, architecture: 'llama' },
  qwen2: { ...LLAMA, architecture: 'qwen2', attentionBias: true, ggufRopeStyle: 'neox' },
  qwen3: { ...LLAMA, architecture: 'qwen3', qkNorm: true, ggufRopeStyle: 'neox' },
  phi3: { ...LLAMA, architecture: 'phi3', ggufRopeStyle: 'neox', fused: true },
  gemma2: { ...GEMMA, architecture: 'gemma2', slidingPattern: 2 },
  gemma3: { ...GEMMA, architecture: 'gemma3', qkNorm: true, slidingPattern: 6 },
  // Qwen2's layer (q/k/v biases) with experts, not renormalised, and a shared expert (MoeConfig.sharedExpertSize)
  qwen2moe: {
    ...LLAMA,
    architecture: 'qwen2moe',
    attentionBias: true,
    ggufRopeStyle: 'neox',
    moeNames: 'mlp',
    moeRenormalize: false,
  },
  qwen3moe: { ...LLAMA, architecture: 'qwen3moe', qkNorm: true, ggufRopeStyle: 'neox', moeNames: 'mlp' },
  olmoe: {
    ...LLAMA,
    architecture: 'olmoe',
    qkNorm: true,
    qkNormOver: 'projection',
    ggufRopeStyle: 'neox',
    moeNames: 'mlp',
    moeRenormalize: false,
  },
};

/** Hugging Face `architectures` names, and the family each loads as. */
export const HF_ARCHITECTURES: Record<string, Family> = {
  LlamaForCausalLM: FAMILIES.llama,
  MistralForCausalLM: FAMILIES.llama,
  Qwen2ForCausalLM: FAMILIES.qwen2,
  Qwen3ForCausalLM: FAMILIES.qwen3,
  Phi3ForCausalLM: FAMILIES.phi3,
  Gemma2ForCausalLM: FAMILIES.gemma2,
  Gemma3ForCausalLM: FAMILIES.gemma3,
  MixtralForCausalLM: FAMILIES.llama,
  Qwen2MoeForCausalLM: FAMILIES.qwen2moe,
  Qwen3MoeForCausalLM: FAMILIES.qwen3moe,
  OlmoeForCausalLM: FAMILIES.olmoe,
};

/** The layers a window of `pattern` slides on (Family.slidingPattern): all but every `pattern`th. */
export function patternLayers(pattern: number, numLayers: number): number[] {
  return Array.from({ length: numLayers }, (_, i) => i).filter((i) => pattern === 0 || (i + 1) % pattern !== 0);
}

export function isArchitecture(a: unknown): a is Architecture {
  return typeof a === 'string' && Object.hasOwn(FAMILIES, a);
}

/** The family a config describes (Llama where it names none). */
export function familyOf(c: { architecture?: Architecture }): Family {
  return FAMILIES[c.architecture ?? 'llama'];
}
