// Every op, with vLLM's names and argument order: one module per op family, each declaring its ops in the registry
// (registry.ts) beside their wrappers. Outputs are caller-allocated; all tensors of one call on one device.
export * from './activation.js';
export * from './add.js';
export * from './attention.js';
export * from './cache.js';
export * from './elementwise.js';
export * from './embedding.js';
export * from './gather-rows.js';
export * from './layernorm.js';
export * from './linear.js';
export * from './moe.js';
export * from './pos-encoding.js';
export * from './quant.js';
export * from './random.js';
export * from './sampling.js';
