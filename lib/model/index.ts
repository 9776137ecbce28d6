export { type LlamaConfig, type RopeStyle } from './config.js';
export { configFromHf, configToHf } from './config-hf.js';
export { parameterCount } from './tensors.js';
export { PRESETS, presetConfig } from './presets.js';
export { type ForwardInput, type KvCache, type LayerWeights, LlamaModel, type LlamaWeights } from './llama.js';
export { buildModel, type LoadedModel, loadModel, type LoadOptions } from './loader.js';
export { loadTokenizer, type ModelFormat, modelFormat, openModel, type OpenedModel, type OpenOptions } from './open.js';
export { type SafetensorsEntry, writeSafetensors } from '../formats/safetensors.js';
export type { LoadProgress } from './weights.js';
