// loadModel(): a model and its tokenizer from a Hugging Face directory, a llama2.c checkpoint, a GGUF file, or
// `dummy:<preset>`, onto a device in the requested dtype. It opens the model (lib/model/open.ts), checks that the
// weights fit (lib/model/memory-plan.ts), and builds them (buildModel); the engine does the same three steps with its
// KV cache and workspace in the plan (lib/engine/kv-budget.ts).
import { MiniVllmError, ModelFormatError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { LlamaConfig } from './config.js';
import { LlamaModel } from './llama.js';
import { planWeights } from './memory-plan.js';
import { type ModelFormat, openModel, type OpenedModel, type OpenOptions } from './open.js';
import { buildWeights, disposeWeights, type LoadProgress } from './weights.js';

export interface LoadOptions extends OpenOptions {
  onProgress?: LoadProgress;
}

export interface LoadedModel {
  model: LlamaModel;
  tokenizer: Tokenizer;
  config: LlamaConfig;
  format: ModelFormat;
  /** What was loaded: the path, or `dummy:<preset>`. */
  source: string;
  loadSeconds: number;
}

/** Loads a model and its tokenizer; rejects with a ModelFormatError naming the file for a bad one. */
export function loadModel(model: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  return new Promise((resolve) => {
    const opened = openModel(model, opts, 'loadModel');
    try {
      const { config, layout } = opened;
      planWeights(`loadModel: ${model}`, config, layout.dtype, layout.device, layout.tied, layout.bytes);
    } catch (e) {
      opened.source.close?.();
      throw e;
    }
    resolve(buildModel(opened, opts.onProgress));
  });
}

/** Builds an opened model's weights on its device as its layout says, and closes its file. */
export function buildModel(opened: OpenedModel, onProgress?: LoadProgress): LoadedModel {
  const { config, source, layout } = opened;
  let llama: LlamaModel;
  try {
    const weights = buildWeights(config, source, layout, onProgress);
    try {
      llama = new LlamaModel(config, weights, { dtype: layout.dtype, device: layout.device });
    } catch (e) {
      disposeWeights(weights);
      throw e;
    }
  } catch (e) {
    if (e instanceof MiniVllmError || e instanceof RangeError || e instanceof TypeError) throw e;
    throw new ModelFormatError(opened.model, (e as Error).message);
  } finally {
    source.close?.();
  }
  return {
    model: llama,
    tokenizer: opened.tokenizer,
    config,
    format: opened.format,
    source: opened.model,
    loadSeconds: (performance.now() - opened.startedAt) / 1000,
  };
}
