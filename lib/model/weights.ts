// The names every loader exposes its file's tensors under (Hugging Face's Llama names: GGUF and llama2.c files are
// mapped to them), and the load options the weights take (online quantisation, progress). The weights' layout is
// planned in lib/model/open.ts, built in lib/model/loader.ts, and held by the model (LlamaWeights, lib/model/llama.ts).

/** Quantisation at load (vLLM's online quantisation): float matrices become these blocks as they load. */
export type LoadQuantization = 'q8_0' | 'q4_0';
export const LOAD_QUANTIZATIONS: readonly LoadQuantization[] = ['q8_0', 'q4_0'];

export interface LoadProgress {
  /** Bytes of device tensors written so far, and in all. */
  (done: number, total: number): void;
}

export const hfName = {
  embedding: 'model.embed_tokens.weight',
  norm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  layer: (i: number, what: string) => `model.layers.${i}.${what}.weight`,
  layerBias: (i: number, what: string) => `model.layers.${i}.${what}.bias`,
};
