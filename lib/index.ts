// mini-vllm: public API.
export { DEVICES, DTYPES, FLOAT_DTYPES, itemSize } from './dtype.js';
export type { DType, Device, FloatDType } from './dtype.js';
export { MiniVllmError } from './errors.js';
export type { MiniVllmErrorCode } from './errors.js';
export { backends, defaultDevice } from './native.js';
export type { Backends, CpuBackend, CudaBackend, CudaDevice, MemoryCount } from './native.js';
export * as ops from './ops/index.js';
export { type Ops, opsWith } from './ops/profiled.js';
export { NULL_PROFILER, type OpProfiler } from './calls.js';
export { type ArgSpec, type OpDef, opRegistry } from './ops/registry.js';
export { Tensor } from './tensor.js';
export type { HostData, TensorOptions } from './tensor.js';
export {
  cudaDeviceIndex,
  deviceMemory,
  memoryStats,
  numThreads,
  resetPeakMemory,
  setCpuIsa,
  setCudaDeviceIndex,
  setNumThreads,
  synchronize,
} from './runtime.js';
export { type HostMemory, hostMemory } from './host-memory.js';
export { ModelFormatError } from './errors.js';
export { Profiler, type Trace, type TraceEvent } from './profiler.js';
export { CpuGraph } from './cpu-graph.js';
export { CudaGraph } from './cuda-graph.js';
export {
  allocateKvCache,
  BlockManager,
  type CreateOptions,
  type CudaGraphStats,
  disposeKvCache,
  EngineCore,
  type EngineOptions,
  type EngineStats,
  type FinishReason,
  generate,
  type GenerateOptions,
  type GenerationResult,
  type GenerationStream,
  InferenceEngine,
  type Prompt,
  type RequestOptions,
  type RequestTimings,
  Scheduler,
  Sequence,
  type StreamDelta,
} from './engine/index.js';
export {
  configFromHf,
  type ForwardInput,
  type KvCache,
  type LlamaConfig,
  LlamaModel,
  type LoadedModel,
  loadModel,
  type LoadOptions,
  loadTokenizer,
  type ModelFormat,
  parameterCount,
  PRESETS,
  presetConfig,
} from './model/index.js';
export {
  MAX_LOGPROBS,
  type ResolvedSamplingParams,
  resolveSamplingParams,
  type SamplingParams,
} from './sampling/params.js';
export {
  Sampler,
  SamplingState,
  type SampleResult,
  type TokenLogprob,
  type TokenLogprobs,
} from './sampling/sampler.js';
export { IncrementalDetokenizer } from './tokenizer/detokenizer.js';
export { HfTokenizer } from './tokenizer/hf.js';
export { SentencePieceTokenizer } from './tokenizer/sentencepiece.js';
export type { ChatMessage, Tokenizer } from './tokenizer/tokenizer.js';
