export { BlockManager, hashBlock, type PrefixCacheStats } from './block-manager.js';
export {
  type CapturedGraph,
  type CudaGraphStats,
  cpuGraphBackend,
  cpuGraphCaptureSizes,
  cudaGraphBackend,
  cudaGraphCaptureSizes,
  DecodeGraphs,
  type GraphBackend,
  graphSizeFor,
  isUniformDecode,
} from './decode-graphs.js';
export { EngineCore, type EngineRequest, type EngineStats, type RequestOutput } from './engine-core.js';
export {
  type CreateOptions,
  type GenerationStream,
  InferenceEngine,
  type Prompt,
  type RequestOptions,
} from './inference-engine.js';
export { allocateKvCache, disposeKvCache, type KvBudget, loadWithKvBudget } from './kv-budget.js';
export { generate, type GenerateOptions } from './offline.js';
export { type CoreState } from './core-client.js';
export { type CoreLoad, Dispatcher, type PromptKey } from './dispatcher.js';
export type { CoreReport, EngineStatsTotal } from './stats.js';
export { ModelRunner, type RunnerLimits } from './model-runner.js';
export { type StepLimits, StepInputs } from './step-inputs.js';
export { DEFAULT_MODEL, type EngineOptions, type ResolvedEngineOptions, resolveEngineOptions } from './options.js';
export type { GenerationResult, RequestTimings, StreamDelta } from './request-state.js';
export {
  type ScheduledSequence,
  Scheduler,
  type SchedulerConfig,
  type SchedulerOutput,
  type SequenceUpdate,
} from './scheduler.js';
export { type FinishReason, Sequence, type SequenceStatus } from './sequence.js';
