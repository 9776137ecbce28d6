// The model families the one forward pass (lib/model/llama.ts) runs: each a small description of what it adds to
// Llama's layer, read by the config loaders (Hugging Face config.json, GGUF metadata, dummy presets), the weight
// layout (lib/model/open.ts) and the forward. Adding a family is a row here and its tensors' names, not a new forward.

/** An architecture as llama.cpp's GGUF files name it (`general.architecture`). */
export type Architecture = 'llama' | 'qwen2' | 'qwen3' | 'phi3';

export interface Family {
  architecture: Architecture;
  /** q, k and v projections have biases. */
  attentionBias: boolean;
  /** Each q and k head is RMS-normalised (weights [headDim]) before RoPE. */
  qkNorm: boolean;
  /**
   * RoPE pairs in the family's GGUF files: 'gptj' where llama.cpp's converter permutes q/k rows (Llama), 'neox' where
   * it keeps Hugging Face's halves (Qwen).
   */
  ggufRopeStyle: 'neox' | 'gptj';
  /** q, k and v are one tensor (qkv_proj; GGUF attn_qkv), and gate and up another (gate_up_proj; GGUF ffn_up). */
  fused: boolean;
}

export const FAMILIES: Record<Architecture, Family> = {
  llama: { architecture: 'llama', attentionBias: false, qkNorm: false, ggufRopeStyle: 'gptj', fused: false },
  qwen2: { architecture: 'qwen2', attentionBias: true, qkNorm: false, ggufRopeStyle: 'neox', fused: false },
  qwen3: { architecture: 'qwen3', attentionBias: false, qkNorm: true, ggufRopeStyle: 'neox', fused: false },
  phi3: { architecture: 'phi3', attentionBias: false, qkNorm: false, ggufRopeStyle: 'neox', fused: true },
};

/** Hugging Face `architectures` names, and the family each loads as. */
export const HF_ARCHITECTURES: Record<string, Family> = {
  LlamaForCausalLM: FAMILIES.llama,
  MistralForCausalLM: FAMILIES.llama,
  Qwen2ForCausalLM: FAMILIES.qwen2,
  Qwen3ForCausalLM: FAMILIES.qwen3,
  Phi3ForCausalLM: FAMILIES.phi3,
};

export function isArchitecture(a: unknown): a is Architecture {
  return typeof a === 'string' && Object.hasOwn(FAMILIES, a);
}

/** The family a config describes (Llama where it names none). */
export function familyOf(c: { architecture?: Architecture }): Family {
  return FAMILIES[c.architecture ?? 'llama'];
}
