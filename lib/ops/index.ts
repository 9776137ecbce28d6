// Every op, with vLLM's names and argument order. Outputs are caller-allocated; all tensors on one device.
export { siluAndMul } from './activation.js';
export { fusedAddRmsNorm, rmsNorm } from './layernorm.js';
export { type RopeCacheOptions, ropeCosSinCache, rotaryEmbedding } from './pos-encoding.js';
