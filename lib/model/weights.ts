// The names every loader exposes its file's tensors under (Hugging Face's Llama names: GGUF and llama2.c files are
// mapped to them), and the load options the weights take (online quantisation, progress). The weights' layout is
// planned in lib/model/open.ts, built in lib/model/loader.ts, and held by the model (LlamaWeights, lib/model/llama.ts).
import type { WeightSource } from '../formats/file.js';

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

/**
 * A multimodal checkpoint's language model under the names above (its vision tower's tensors are never read): Gemma 3's
 * `language_model.model.*` and `language_model.lm_head.weight` (the released files), or `model.language_model.*`
 * (transformers 4.52 on). The source itself where its tensors already have those names.
 */
export function languageModelSource(src: WeightSource): WeightSource {
  if (src.has(hfName.embedding)) return src;
  const forms: [string, (n: string) => string][] = [
    ['language_model.model.', (n) => `language_model.${n}`],
    ['model.language_model.', (n) => (n.startsWith('model.') ? `model.language_model.${n.slice(6)}` : n)],
  ];
  const form = forms.find(([prefix]) => src.has(`${prefix}embed_tokens.weight`));
  if (!form) return src;
  const rename = form[1];
  return {
    file: src.file,
    has: (n) => src.has(rename(n)),
    shape: (n) => src.shape(rename(n)),
    read: (n, row, rows) => src.read(rename(n), row, rows),
    ...(src.fill ? { fill: (n, dst) => src.fill!(rename(n), dst) } : {}),
    ...(src.quantType ? { quantType: (n) => src.quantType!(rename(n)) } : {}),
    ...(src.readRaw ? { readRaw: (n, row, rows) => src.readRaw!(rename(n), row, rows) } : {}),
    ...(src.close ? { close: () => src.close!() } : {}),
  };
}
