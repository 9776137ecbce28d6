// `dummy:<preset>` shapes: the published configs of the models a dummy stands in for (random weights at their real
// shapes, so a plan or a benchmark of a preset is that model's).
import { type LlamaConfig, validateConfig } from './config.js';
import { patternLayers } from './families.js';

export type PresetShape = Omit<LlamaConfig, 'headDim'> & { headDim?: number };

const llama2c = {
  vocabSize: 32000,
  ropeTheta: 10000,
  ropeStyle: 'gptj',
  tieWordEmbeddings: true,
  rmsNormEps: 1e-5,
  bosTokenId: 1,
  eosTokenIds: [1, 2],
} as const;
const hfLlama2 = {
  vocabSize: 32000,
  ropeTheta: 10000,
  ropeStyle: 'neox',
  tieWordEmbeddings: false,
  rmsNormEps: 1e-5,
  bosTokenId: 1,
  eosTokenIds: [2],
} as const;

const qwen = {
  vocabSize: 151936,
  ropeTheta: 1000000,
  ropeStyle: 'neox',
  tieWordEmbeddings: true,
  rmsNormEps: 1e-6,
  bosTokenId: 151643,
  eosTokenIds: [151645, 151643],
} as const;

const gemma = {
  vocabSize: 256000,
  ropeStyle: 'neox',
  tieWordEmbeddings: true,
  rmsNormEps: 1e-6,
  bosTokenId: 2,
  addUnitToNorms: true,
} as const;

/** Real model shapes for `dummy:<preset>` (the published configs of each model). */
export const PRESETS: Record<string, PresetShape> = {
  stories15M: {
    ...llama2c,
    hiddenSize: 288,
    intermediateSize: 768,
    numLayers: 6,
    numHeads: 6,
    numKvHeads: 6,
    maxPositionEmbeddings: 256,
    eosTokenIds: [1, 2],
  },
  stories42M: {
    ...llama2c,
    hiddenSize: 512,
    intermediateSize: 1376,
    numLayers: 8,
    numHeads: 8,
    numKvHeads: 8,
    maxPositionEmbeddings: 1024,
    eosTokenIds: [1, 2],
  },
  stories110M: {
    ...llama2c,
    hiddenSize: 768,
    intermediateSize: 2048,
    numLayers: 12,
    numHeads: 12,
    numKvHeads: 12,
    maxPositionEmbeddings: 1024,
    eosTokenIds: [1, 2],
  },
  'tinyllama-1.1b': {
    ...hfLlama2,
    hiddenSize: 2048,
    intermediateSize: 5632,
    numLayers: 22,
    numHeads: 32,
    numKvHeads: 4,
    maxPositionEmbeddings: 2048,
    eosTokenIds: [2],
  },
  'llama-2-7b': {
    ...hfLlama2,
    hiddenSize: 4096,
    intermediateSize: 11008,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 32,
    maxPositionEmbeddings: 4096,
    eosTokenIds: [2],
  },
  'llama-3-8b': {
    ...hfLlama2,
    vocabSize: 128256,
    hiddenSize: 4096,
    intermediateSize: 14336,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 8,
    maxPositionEmbeddings: 8192,
    ropeTheta: 500000,
    bosTokenId: 128000,
    eosTokenIds: [128001, 128009],
  },
  'llama-3.2-1b': {
    ...hfLlama2,
    vocabSize: 128256,
    hiddenSize: 2048,
    intermediateSize: 8192,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    maxPositionEmbeddings: 131072,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: {
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    },
    tieWordEmbeddings: true,
    bosTokenId: 128000,
    eosTokenIds: [128001, 128008, 128009],
  },
  'phi-3-mini': {
    ...hfLlama2,
    architecture: 'phi3',
    vocabSize: 32064,
    hiddenSize: 3072,
    intermediateSize: 8192,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 32,
    maxPositionEmbeddings: 4096,
    slidingWindow: 2047,
    bosTokenId: 1,
    eosTokenIds: [32000, 32001, 32007],
  },
  'qwen2.5-0.5b': {
    ...qwen,
    architecture: 'qwen2',
    attentionBias: true,
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    maxPositionEmbeddings: 32768,
    eosTokenIds: [151645, 151643],
  },
  'qwen3-0.6b': {
    ...qwen,
    architecture: 'qwen3',
    qkNorm: true,
    hiddenSize: 1024,
    intermediateSize: 3072,
    numLayers: 28,
    numHeads: 16,
    numKvHeads: 8,
    headDim: 128,
    maxPositionEmbeddings: 40960,
    eosTokenIds: [151645, 151643],
  },
  // google/gemma-2-2b-it: windows of 4096 on the even layers, soft-caps 50 and 30; the dummy's norms are (1 + w)
  'gemma-2-2b': {
    ...gemma,
    architecture: 'gemma2',
    hiddenSize: 2304,
    intermediateSize: 9216,
    numLayers: 26,
    numHeads: 8,
    numKvHeads: 4,
    headDim: 256,
    maxPositionEmbeddings: 8192,
    ropeTheta: 10000,
    slidingWindow: 4096,
    slidingWindowLayers: patternLayers(2, 26),
    attentionScale: 1 / 16,
    attnLogitSoftCap: 50,
    finalLogitSoftCap: 30,
    eosTokenIds: [1, 107],
  },
  // google/gemma-3-1b-it: q/k norms, five local layers (window 512, RoPE base 10000) to one global (base 1e6)
  'gemma-3-1b': {
    ...gemma,
    architecture: 'gemma3',
    qkNorm: true,
    vocabSize: 262144,
    hiddenSize: 1152,
    intermediateSize: 6912,
    numLayers: 26,
    numHeads: 4,
    numKvHeads: 1,
    headDim: 256,
    maxPositionEmbeddings: 32768,
    ropeTheta: 1000000,
    slidingRopeTheta: 10000,
    slidingWindow: 512,
    slidingWindowLayers: patternLayers(6, 26),
    attentionScale: 1 / 16,
    eosTokenIds: [1, 106],
  },
};

export function presetConfig(name: string): LlamaConfig {
  const p = PRESETS[name];
  if (p === undefined)
    throw new RangeError(`dummy model: unknown preset "${name}" (one of ${Object.keys(PRESETS).join(', ')})`);
  const headDim = p.headDim ?? p.hiddenSize / p.numHeads;
  return validateConfig({ ...p, eosTokenIds: [...p.eosTokenIds], headDim }, `dummy:${name}`);
}
