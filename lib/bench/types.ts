// What `mini-vllm bench` takes and what it reports: the options of a run, and the report's shape (the JSON it writes).
import type { CreateOptions, CudaGraphStats } from '../engine/index.js';
import type { OpSummary, Trace } from '../profiler.js';
import type { MachineInfo } from './machine.js';
import type { Metrics, RequestRecord, Slo, Summary } from './metrics.js';

export const BENCH_MODES = ['throughput', 'latency', 'serve', 'memory', 'all'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

export interface BenchOptions {
  mode: BenchMode;
  /** Engine options (model, device, dtype, maxNumSeqs, ...). */
  engine: Omit<CreateOptions, 'seed'>;
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  /** latency: prompts per iteration. */
  batchSize: number;
  /** latency: measured iterations. */
  numIters: number;
  /** serve: requests per second (Infinity: all at once). */
  requestRate: number;
  /** serve: one run per value; Infinity = no limit. */
  maxConcurrency: number[];
  seed: number;
  /** Requests of the benchmark's shape run (all at once) before anything is measured. */
  warmup: number;
  slo?: Slo;
  /** Profile this many steps of a decode batch (batchSize sequences) at the end. */
  profileSteps?: number;
  /**
   * serve only: send the requests over HTTP to this running OpenAI-compatible server (streamed /v1/completions)
   * instead of an engine in this process. The model option then only names the tokenizer the prompts are drawn from.
   */
  baseUrl?: string;
  apiKey?: string;
  log?: (msg: string) => void;
}

export interface RunResult {
  metrics: Metrics;
  /** Raw per-request times in ms from the run's start. */
  requests: Array<RequestRecord & { requestId: string }>;
}

export interface LatencyResult extends RunResult {
  batchSize: number;
  iterations: number;
  /** Whole-batch latency per iteration (ms): vLLM's latency benchmark's figure. */
  iterationLatencyMs: Summary;
  /** The decode step's lower bound: every weight read once per step at the measured bandwidth. */
  bandwidthFloor: {
    weightsBytes: number;
    gbPerSecond: number;
    tpotFloorMs: number;
    fractionOfFloorAtMedianTpot: number | null;
  };
}

export interface ServeResult extends RunResult {
  requestRate: number | 'inf';
  maxConcurrency: number | 'inf';
}

export interface MemoryResult {
  device: string;
  weightsBytes: number;
  kvCacheBytes: number;
  kvBytesPerToken: number;
  blockSize: number;
  numBlocks: number;
  /** Sequences of maxModelLen the pool holds at once. */
  maxFullLengthSequences: number;
  peakUsedBlocks: number;
  /** The most bytes of live tensors on the device over the workload (weights + KV + activations). */
  peakDeviceBytes: number;
  /** The whole process's peak resident set (the caller, the engine worker, the runtime). */
  peakProcessRssBytes: number;
  /** CUDA only: the driver's count of used device memory after the workload (includes the runtime's own). */
  deviceUsedBytes: number | null;
}

export interface BenchReport {
  tool: 'mini-vllm bench';
  version: string;
  date: string;
  commit: string | null;
  mode: BenchMode;
  /** 'engine': an InferenceEngine in this process; else the server's URL. */
  target: string;
  config: Omit<BenchOptions, 'log' | 'engine' | 'maxConcurrency' | 'requestRate' | 'apiKey'> & {
    requestRate: number | 'inf';
    maxConcurrency: Array<number | 'inf'>;
    engine: Record<string, unknown>;
  };
  machine: MachineInfo;
  backend: {
    device: string;
    dtype: string;
    model: string;
    parameters: number;
    simd: string;
    threads: number;
    cudaArchs: string | null;
  };
  /** This machine's memory bandwidth (null for an HTTP target, which may be elsewhere). */
  bandwidth: { kind: string; gbPerSecond: number } | null;
  loadSeconds: number | null;
  /** The engine's decode graphs after the runs (null: eager); absent for an HTTP target. */
  cudaGraphs?: CudaGraphStats | null;
  throughput?: RunResult;
  latency?: LatencyResult;
  serve?: ServeResult[];
  memory?: MemoryResult;
  /** The profiled steps: where their time went (the trace itself is written to --profile). */
  profile?: { steps: number; events: number; summary: OpSummary };
  trace?: Trace;
}
