// mini-vllm: public API.
export { DEVICES, DTYPES, FLOAT_DTYPES, itemSize } from './dtype.js';
export type { DType, Device, FloatDType } from './dtype.js';
export { MiniVllmError } from './errors.js';
export type { MiniVllmErrorCode } from './errors.js';
export { backends, defaultDevice } from './native.js';
export type { Backends, CpuBackend, CudaBackend, CudaDevice, MemoryCount } from './native.js';
export * as ops from './ops/index.js';
export { Tensor } from './tensor.js';
export type { HostData, TensorOptions } from './tensor.js';
export { memoryStats, numThreads, setNumThreads, synchronize } from './runtime.js';
