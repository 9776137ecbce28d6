// The engine core: owns the model, the KV cache, the scheduler and the runner, and runs the loop
// schedule -> run -> update one step at a time. It runs in a worker thread under InferenceEngine, or in-process.
import type { Device, FloatDType } from '../dtype.js';
import type { LlamaConfig } from '../model/config.js';
import { loadModel, type LoadedModel } from '../model/loader.js';
import { type EnginePlanInput, kvBytesPerSlotFor, planEngine } from '../model/memory-plan.js';
import { disposeKvCache, type KvCache } from '../model/llama.js';
import type { LoadProgress } from '../model/weights.js';
import { NULL_STEP_PROFILER, Profiler, type StepProfiler, type Trace } from '../profiler.js';
import { cudaDeviceIndex, deviceMemory, memoryStats, resetPeakMemory, synchronize } from '../runtime.js';
import type { ResolvedSamplingParams } from '../sampling/params.js';
import { Sampler, type TokenLogprobs } from '../sampling/sampler.js';
import { Tensor } from '../tensor.js';
import { BlockManager } from './block-manager.js';
import { type CudaGraphStats, cudaGraphBackend, cudaGraphCaptureSizes, type GraphBackend } from './decode-graphs.js';
import { ModelRunner } from './model-runner.js';
import {
  DEFAULT_CPU_KV_CACHE_BYTES,
  type EngineOptions,
  finishEngineOptions,
  maxDecodeBatch,
  type ResolvedEngineOptions,
  resolveEngineOptions,
} from './options.js';
import { type ScheduledSequence, Scheduler, type SchedulerOutput } from './scheduler.js';
import { type FinishReason, Sequence } from './sequence.js';

export interface EngineRequest {
  requestId: string;
  promptTokenIds: number[];
  params: ResolvedSamplingParams;
}

/** One sampled token of one request, as a step reports it. */
export interface RequestOutput {
  requestId: string;
  token: number;
  logprobs: TokenLogprobs | null;
  /** Set when this token ends the request (an end token, a stop id, or the length budget). */
  finishReason: FinishReason | null;
  stopReason: number | null;
  /** Prompt tokens found in the prefix cache when the request was admitted. */
  numCachedTokens: number;
}

export interface EngineStats {
  memory: {
    /** 'cpu', or 'cuda:<index>'. */
    device: string;
    weightsBytes: number;
    /** Bytes of the K and V pools. */
    kvCacheBytes: number;
    blockSize: number;
    numBlocks: number;
    /** Held by a running sequence. usedBlocks + freeBlocks = numBlocks. */
    usedBlocks: number;
    freeBlocks: number;
    /** Of the free blocks, those still holding a cached prefix. */
    cachedBlocks: number;
    /** The most blocks held at once since the engine started (or resetPeaks). */
    peakUsedBlocks: number;
    /** The most bytes of live tensors the device held since the engine started or resetPeaks (weights, KV,
     * activations). */
    peakBytes: number;
  };
  scheduler: {
    running: number;
    waiting: number;
    /** Preemptions so far (a sequence preempted twice counts twice). */
    preempted: number;
  };
  /** In tokens, over every admission of a sequence (vLLM's counting). */
  prefixCache: { hits: number; queries: number; hitRate: number };
  /** Decode graphs (CUDA unless enforceEager): sizes captured, capture time, replays; null when every step is eager. */
  cudaGraphs: CudaGraphStats | null;
  throughput: {
    steps: number;
    promptTokens: number;
    generationTokens: number;
    /** Over the last 10 s. */
    promptTokensPerSecond: number;
    generationTokensPerSecond: number;
  };
}

const RATE_WINDOW_MS = 10_000;

export class EngineCore {
  readonly loaded: LoadedModel;
  readonly options: ResolvedEngineOptions & { maxModelLen: number };
  readonly scheduler: Scheduler;
  readonly kv: KvCache;
  private readonly runner: ModelRunner;
  private steps = 0;
  private peakUsedBlocks = 0;
  private promptTokens = 0;
  private generationTokens = 0;
  private readonly recent: { at: number; prompt: number; generation: number }[] = [];
  private disposed = false;
  /** The profiler recording this core's steps (startProfile), or the null one. */
  private profiler: Profiler | null = null;

  private constructor(
    loaded: LoadedModel,
    options: ResolvedEngineOptions & { maxModelLen: number },
    numBlocks: number,
    private readonly ownsModel: boolean,
    graphBackend: GraphBackend | null = null,
  ) {
    this.loaded = loaded;
    this.options = options;
    const { model, config } = loaded;
    const bs = options.blockSize;
    this.kv = model.allocateKvCache(numBlocks, bs);
    try {
      const sampler = new Sampler(config.vocabSize, options.seed === null ? {} : { seed: options.seed });
      // Decode graphs on CUDA unless enforceEager; a given backend (tests) records them on any device.
      const backend = options.enforceEager
        ? null
        : (graphBackend ?? (model.device === 'cuda' ? cudaGraphBackend(cudaDeviceIndex()) : null));
      const graphs = backend && {
        backend,
        sizes: options.cudaGraphCaptureSizes ?? cudaGraphCaptureSizes(maxDecodeBatch(options)),
      };
      this.runner = new ModelRunner(
        model,
        this.kv,
        sampler,
        {
          maxNumBatchedTokens: options.maxNumBatchedTokens,
          maxNumSeqs: options.maxNumSeqs,
          maxBlocksPerSeq: Math.ceil(options.maxModelLen / bs),
        },
        graphs,
      );
    } catch (e) {
      disposeKvCache(this.kv);
      throw e;
    }
    const eos = new Set([...config.eosTokenIds, ...loaded.tokenizer.eosTokenIds]);
    this.scheduler = new Scheduler(options, new BlockManager(numBlocks, bs, options.enablePrefixCaching), eos);
  }

  /** Loads the model, sizes the KV cache from the memory budget, and allocates it. */
  static async create(options: ResolvedEngineOptions, onProgress?: LoadProgress): Promise<EngineCore> {
    resetPeakMemory();
    let kvCacheBytes: number | null = null;
    const loaded = await loadModel(options.model, {
      device: options.device,
      dtype: options.dtype,
      seed: options.seed ?? 0,
      onProgress,
      ...(options.tokenizer === null ? {} : { tokenizer: options.tokenizer }),
      // Weights, KV cache and workspace are planned together before the first weight is allocated.
      ...(options.quantization === null ? {} : { quantization: options.quantization }),
      plan: (config, dtype, device, tied, weightsBytes) => {
        const opts = finishEngineOptions(options, config);
        kvCacheBytes = planEngine(options.model, {
          ...planInput(opts, config, dtype, device),
          tied,
          loadsWeights: true,
          weightsBytes,
        });
      },
    });
    try {
      const opts = finishEngineOptions(options, loaded.config);
      return new EngineCore(loaded, opts, kvBlocks(loaded, opts, kvCacheBytes), true);
    } catch (e) {
      loaded.model.dispose();
      throw e;
    }
  }

  /**
   * An engine core over a model already loaded on this thread (which stays the caller's: dispose() leaves it). The
   * options' model, device and dtype come from `loaded`.
   */
  static fromLoaded(
    loaded: LoadedModel,
    options: Omit<EngineOptions, 'model' | 'device' | 'dtype' | 'tokenizer'> = {},
    /** @internal records the decode graphs with this backend instead of CUDA's (tests run the graph path on the CPU) */
    graphBackend: GraphBackend | null = null,
  ): EngineCore {
    const resolved = resolveEngineOptions({
      ...options,
      model: loaded.source,
      device: loaded.model.device,
      dtype: loaded.model.dtype,
    });
    const opts = finishEngineOptions(resolved, loaded.config);
    const { model, config } = loaded;
    const kvCacheBytes = planEngine(loaded.source, {
      ...planInput(opts, config, model.dtype, model.device),
      tied: true,
      loadsWeights: false,
    });
    return new EngineCore(loaded, opts, kvBlocks(loaded, opts, kvCacheBytes), false, graphBackend);
  }

  get hasUnfinished(): boolean {
    return this.scheduler.hasUnfinished;
  }

  add(req: EngineRequest): void {
    this.scheduler.add(new Sequence(req.requestId, req.promptTokenIds, req.params, this.loaded.config.vocabSize));
  }

  /** Ends the requests now and frees their blocks; ids that already finished are ignored. */
  abort(requestIds: readonly string[]): void {
    for (const id of requestIds) this.scheduler.abort(id);
  }

  /** Schedules and runs one step; returns a token for every sequence that sampled. Nothing to do: []. */
  step(): RequestOutput[] {
    if (this.disposed) throw new Error('EngineCore: the engine was shut down');
    const p: StepProfiler = this.profiler ?? NULL_STEP_PROFILER;
    let scheduled: readonly ScheduledSequence[] = [];
    // what the trace says of the step, worked out only when a profiler records it
    const describe = () =>
      scheduled.length === 0
        ? {}
        : {
            numSeqs: scheduled.length,
            numTokens: scheduled.reduce((n, s) => n + s.numTokens, 0),
            numDecodes: scheduled.filter((s) => s.numTokens === 1).length,
          };
    return p.step(describe, () => {
      const out = p.range('schedule', () => this.scheduler.schedule());
      scheduled = out.scheduled;
      return this.stepOnce(p, out);
    });
  }

  /**
   * Profiles the next `maxSteps` steps: every op, with its shapes, as a Chrome / Perfetto trace that stopProfile()
   * returns. The profiler records what runs on this thread until then.
   */
  startProfile(maxSteps = 5): void {
    if (this.profiler !== null) throw new Error('startProfile: the engine is already profiling (stopProfile first)');
    const p = new Profiler(this.loaded.model.device, cudaDeviceIndex(), maxSteps);
    p.start();
    this.profiler = p;
  }

  /** Stops profiling; the trace of the steps recorded since startProfile(). */
  stopProfile(): Trace {
    if (this.profiler === null) throw new Error('stopProfile: the engine is not profiling (startProfile first)');
    const trace = this.profiler.stop();
    this.profiler = null;
    return trace;
  }

  private stepOnce(p: StepProfiler, out: SchedulerOutput): RequestOutput[] {
    if (out.scheduled.length === 0) return [];
    const sampled = this.runner.run(out, p);
    const updates = p.range('update', () => this.scheduler.update(out, sampled.tokens));
    const peak = this.scheduler.blockManager.numUsedBlocks;
    if (peak > this.peakUsedBlocks) this.peakUsedBlocks = peak;
    ++this.steps;
    let prompt = 0; // prompt tokens computed in this step (recomputed output tokens of a preempted sequence are not)
    for (const s of out.scheduled)
      prompt += Math.max(0, Math.min(s.start + s.numTokens, s.seq.promptTokenIds.length) - s.start);
    this.promptTokens += prompt;
    this.generationTokens += updates.length;
    const now = performance.now();
    this.recent.push({ at: now, prompt, generation: updates.length });
    while (this.recent.length > 0 && this.recent[0]!.at < now - RATE_WINDOW_MS) this.recent.shift();
    return updates.map((u, k) => ({
      requestId: u.seq.requestId,
      token: u.token,
      logprobs: sampled.logprobs[k] ?? null,
      finishReason: u.finishReason,
      stopReason: u.stopReason,
      numCachedTokens: u.seq.numCachedTokens,
    }));
  }

  stats(): EngineStats {
    const bm = this.scheduler.blockManager;
    const { prefixCache } = bm;
    let prompt = 0,
      generation = 0;
    for (const r of this.recent) {
      prompt += r.prompt;
      generation += r.generation;
    }
    const span = this.recent.length > 1 ? (this.recent.at(-1)!.at - this.recent[0]!.at) / 1000 : 0;
    return {
      memory: {
        device: this.loaded.model.device === 'cuda' ? `cuda:${cudaDeviceIndex()}` : 'cpu',
        weightsBytes: this.loaded.model.weightsBytes,
        kvCacheBytes: bm.numBlocks * bm.blockSize * this.loaded.model.kvBytesPerSlot,
        blockSize: bm.blockSize,
        numBlocks: bm.numBlocks,
        usedBlocks: bm.numUsedBlocks,
        freeBlocks: bm.numFreeBlocks,
        cachedBlocks: bm.numCachedBlocks,
        peakUsedBlocks: this.peakUsedBlocks,
        peakBytes: memoryStats()[this.loaded.model.device].peakBytes,
      },
      scheduler: {
        running: this.scheduler.running.length,
        waiting: this.scheduler.waiting.length,
        preempted: this.scheduler.numPreemptions,
      },
      prefixCache: { ...prefixCache, hitRate: prefixCache.queries > 0 ? prefixCache.hits / prefixCache.queries : 0 },
      cudaGraphs: this.runner.graphStats(),
      throughput: {
        steps: this.steps,
        promptTokens: this.promptTokens,
        generationTokens: this.generationTokens,
        promptTokensPerSecond: span > 0 ? prompt / span : 0,
        generationTokensPerSecond: span > 0 ? generation / span : 0,
      },
    };
  }

  /** Starts the peak counters (blocks held, the device's live bytes) again from what is held now. */
  resetPeaks(): void {
    this.peakUsedBlocks = this.scheduler.blockManager.numUsedBlocks;
    resetPeakMemory();
  }

  /** Frees the KV cache, the step buffers, and the model if the core loaded it. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.profiler?.stop();
    this.profiler = null;
    this.runner.dispose();
    disposeKvCache(this.kv);
    if (this.ownsModel) this.loaded.model.dispose();
  }
}

function planInput(
  o: ResolvedEngineOptions & { maxModelLen: number },
  config: LlamaConfig,
  dtype: FloatDType,
  device: Device,
): Omit<EnginePlanInput, 'tied' | 'loadsWeights'> {
  return {
    config,
    dtype,
    device,
    maxModelLen: o.maxModelLen,
    maxNumSeqs: o.maxNumSeqs,
    maxNumBatchedTokens: o.maxNumBatchedTokens,
    blockSize: o.blockSize,
    kvCacheBytes: o.kvCacheBytes,
    gpuMemoryUtilization: o.gpuMemoryUtilization,
    cpuKvCacheCap: Math.min(
      DEFAULT_CPU_KV_CACHE_BYTES,
      o.maxNumSeqs * Math.ceil(o.maxModelLen / o.blockSize) * o.blockSize * kvBytesPerSlotFor(config, dtype),
    ),
  };
}

/**
 * KV-cache blocks for the budget: the planned bytes where the plan fixed them (kvCacheBytes where given, on either
 * device, as vLLM's kv_cache_memory_bytes; the CPU's default: what is left after the weights, at most 4 GiB and at
 * most what maxNumSeqs full-length sequences need). CUDA's default: gpuMemoryUtilization of the device, less what is
 * in use after a profiling step of the largest shapes (weights, activations, scratch), as vLLM sizes it.
 */
function kvBlocks(
  loaded: LoadedModel,
  o: ResolvedEngineOptions & { maxModelLen: number },
  planned: number | null,
): number {
  const { model } = loaded;
  const blockBytes = o.blockSize * model.kvBytesPerSlot;
  const minBlocks = Math.ceil(o.maxModelLen / o.blockSize);
  let bytes: number;
  let what: string;
  if (planned !== null || model.device === 'cpu') {
    bytes = planned ?? o.kvCacheBytes ?? DEFAULT_CPU_KV_CACHE_BYTES;
    what = `kvCacheBytes ${bytes}`;
  } else {
    profileStep(loaded, o);
    const { free, total } = deviceMemory();
    bytes = Math.floor(total * o.gpuMemoryUtilization - (total - free));
    what = `gpuMemoryUtilization ${o.gpuMemoryUtilization} leaves ${bytes} bytes after weights and activations`;
  }
  const numBlocks = Math.floor(bytes / blockBytes);
  if (numBlocks < minBlocks)
    throw new RangeError(
      `InferenceEngine: the KV cache holds ${numBlocks} blocks of ${o.blockSize} tokens (${what}); one sequence of ` +
        `maxModelLen ${o.maxModelLen} needs ${minBlocks}. Lower maxModelLen or raise the budget`,
    );
  return numBlocks;
}

/**
 * Runs the largest step shapes once so the activation buffers and attention scratch reach their full size before the
 * free memory is read: a prefill of maxNumBatchedTokens tokens, and a decode of maxNumSeqs sequences of maxModelLen.
 * K/V go nowhere (negative slots) and attention reads a one-block cache; the outputs are thrown away.
 */
function profileStep(loaded: LoadedModel, o: ResolvedEngineOptions & { maxModelLen: number }): void {
  const { model, config } = loaded;
  const device = model.device;
  const kv = model.allocateKvCache(1, o.blockSize);
  const ints = (a: ArrayLike<number>, shape = [a.length]) =>
    Tensor.fromArray(Int32Array.from(a), shape, { dtype: 'int32', device });
  const run = (numSeqs: number, queryLen: number, seqLen: number) => {
    const T = numSeqs * queryLen;
    const width = Math.ceil(seqLen / o.blockSize);
    const tensors = [
      ints(new Int32Array(T)),
      ints(Array.from({ length: T }, (_, i) => seqLen - queryLen + (i % queryLen))),
      ints(new Int32Array(T).fill(-1)),
      ints(Array.from({ length: numSeqs + 1 }, (_, s) => s * queryLen)),
      ints(new Int32Array(numSeqs).fill(seqLen)),
      ints(new Int32Array(numSeqs * width), [numSeqs, width]),
      ints(Array.from({ length: numSeqs }, (_, s) => (s + 1) * queryLen - 1)),
    ] as const;
    try {
      model.forward(
        {
          tokenIds: tensors[0],
          positions: tensors[1],
          slotMapping: tensors[2],
          logitsIndices: tensors[6],
          attention: {
            queryStartLoc: tensors[3],
            seqLens: tensors[4],
            blockTables: tensors[5],
            scale: 1 / Math.sqrt(config.headDim),
            maxSeqLen: seqLen,
            maxQueryLen: queryLen,
          },
        },
        kv,
      );
      synchronize(device);
    } finally {
      tensors.forEach((t) => t.dispose());
    }
  };
  try {
    const seqs = Math.min(o.maxNumSeqs, o.maxNumBatchedTokens);
    const perSeq = Math.min(o.maxModelLen, Math.ceil(o.maxNumBatchedTokens / seqs));
    run(Math.ceil(o.maxNumBatchedTokens / perSeq), perSeq, perSeq);
    run(seqs, 1, o.maxModelLen);
  } finally {
    disposeKvCache(kv);
  }
}
