// The TypeScript reference of every op: the oracle the tests compare the kernels with, readable as a spec.
export { silu, siluAndMul } from './activation.js';
export { type CacheShape, type ReferenceAttentionMeta, pagedAttention, reshapeAndCache } from './attention.js';
export { roundArray, roundBFloat16, roundFloat16, roundTo } from './dtype.js';
export { fusedAddRmsNorm, rmsNorm } from './layernorm.js';
export { add, gatherRows, linear } from './linear.js';
export { ropeCosSin, ropeInvFreq, type RopeScaling, rotaryEmbedding } from './pos-encoding.js';
export { llamaForward, type ReferenceWeights } from './llama.js';
export { keptDistribution, type ReferenceSampleParams, sampleReference } from './sampling.js';
export { uniformAt } from './random.js';
