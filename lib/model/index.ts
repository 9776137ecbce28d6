export {
  configFromHf,
  configToHf,
  type LlamaConfig,
  parameterCount,
  PRESETS,
  presetConfig,
  type RopeStyle,
} from './config.js';
export { type ForwardInput, type KvCache, disposeKvCache, LlamaModel } from './llama.js';
export {
  type LoadedModel,
  loadModel,
  type LoadOptions,
  loadTokenizer,
  type ModelFormat,
  modelFormat,
} from './loader.js';
export { type SafetensorsEntry, writeSafetensors } from './safetensors.js';
export type { LayerWeights, LlamaWeights, LoadProgress } from './weights.js';
