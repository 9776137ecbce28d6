// The TypeScript reference of every op: the oracle the tests compare the kernels with, readable as a spec. One module
// per op family, named as in lib/ops.
export * from './activation.js';
export * from './add.js';
export * from './attention.js';
export * from './cache.js';
export * from './dtype.js';
export * from './elementwise.js';
export * from './embedding.js';
export * from './gather-rows.js';
export * from './layernorm.js';
export * from './linear.js';
export * from './llama.js';
export * from './moe.js';
export * from './pos-encoding.js';
export * from './quant.js';
export * from './random.js';
export * from './sampling.js';
