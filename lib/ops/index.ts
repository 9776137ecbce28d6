// Every op, with vLLM's names and argument order. Outputs are caller-allocated; all tensors on one device.
export { siluAndMul } from './activation.js';
export { type AttentionMetadata, pagedAttention, reshapeAndCache } from './attention.js';
export { add } from './elementwise.js';
export { embedding, gatherRows } from './embedding.js';
export { fusedAddRmsNorm, rmsNorm } from './layernorm.js';
export { linear } from './linear.js';
export { type RopeCacheOptions, ropeCosSinCache, rotaryEmbedding } from './pos-encoding.js';
export { sampleRows, type SampleRowsParams } from './sampling.js';
export { fillUniform } from './random.js';
