// The engine core: owns the model, the KV cache, the scheduler and the runner, and runs the loop
// schedule -> run -> update one step at a time. It runs in a worker thread under InferenceEngine, or in-process.
// Start-up (loading the model and sizing the KV cache) is lib/engine/kv-budget.ts.
import type { KvCache } from '../model/llama.js';
import type { LoadedModel } from '../model/loader.js';
import type { LoadProgress } from '../model/weights.js';
import { NULL_STEP_PROFILER, Profiler, type StepProfiler, type Trace } from '../profiler.js';
import { cudaDeviceIndex, memoryStats, resetPeakMemory } from '../runtime.js';
import type { ResolvedSamplingParams } from '../sampling/params.js';
import { Sampler, type TokenLogprobs } from '../sampling/sampler.js';
import { GrammarCompiler, type GrammarMatcher } from '../structured/grammars.js';
import { BlockManager } from './block-manager.js';
import {
  cpuGraphBackend,
  cpuGraphCaptureSizes,
  cudaGraphBackend,
  cudaGraphCaptureSizes,
  type GraphBackend,
} from './decode-graphs.js';
import { disposeKvCache, kvCacheForLoaded, loadWithKvBudget } from './kv-budget.js';
import { ModelRunner } from './model-runner.js';
import {
  type EngineConfig,
  type EngineOptions,
  finishEngineOptions,
  maxDecodeBatch,
  resolveEngineOptions,
} from './options.js';
import { type ScheduledSequence, Scheduler, type SchedulerOutput } from './scheduler.js';
import { type FinishReason, Sequence } from './sequence.js';
import { type EngineStats, StepCounters } from './stats.js';

export type { EngineStats } from './stats.js';

export interface EngineRequest {
  requestId: string;
  promptTokenIds: number[];
  params: ResolvedSamplingParams;
}

/** What a constrained request or one with bad words needs before add(): from EngineCore.prepare(). */
export interface PreparedRequest {
  matcher: GrammarMatcher | null;
  badWordsTokenIds: number[][];
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

export class EngineCore {
  readonly loaded: LoadedModel;
  readonly options: EngineConfig;
  readonly scheduler: Scheduler;
  readonly kv: KvCache;
  private readonly runner: ModelRunner;
  private readonly counters = new StepCounters();
  private disposed = false;
  /** The profiler recording this core's steps (startProfile), or the null one. */
  private profiler: Profiler | null = null;
  /** Structured output's grammars, made at the first constrained request. */
  private grammars: GrammarCompiler | null = null;
  private readonly eos: readonly number[];

  private constructor(
    loaded: LoadedModel,
    options: EngineConfig,
    kv: KvCache,
    private readonly ownsModel: boolean,
    graphBackend: GraphBackend | null = null,
  ) {
    this.loaded = loaded;
    this.options = options;
    const { model, config } = loaded;
    const bs = options.blockSize;
    this.kv = kv;
    try {
      const sampler = new Sampler(config.vocabSize, options.seed === null ? {} : { seed: options.seed });
      // Decode graphs unless enforceEager: CUDA graphs on CUDA, CPU graphs on the CPU; a given backend (tests) is used
      // on any device.
      const backend = options.enforceEager
        ? null
        : (graphBackend ?? (model.device === 'cuda' ? cudaGraphBackend(cudaDeviceIndex()) : cpuGraphBackend()));
      const ladder = backend?.lazy ? cpuGraphCaptureSizes : cudaGraphCaptureSizes;
      const graphs = backend && {
        backend,
        sizes: options.cudaGraphCaptureSizes ?? ladder(maxDecodeBatch(options)),
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
    this.eos = [...eos];
    this.scheduler = new Scheduler(options, new BlockManager(kv.numBlocks, bs, options.enablePrefixCaching), eos);
  }

  /**
   * Loads the model, sizes the KV cache from the memory budget (kv-budget.ts), and allocates it. The options are
   * final: finishEngineOptions has run with the model's config (InferenceEngine.create does, on the caller's thread).
   */
  static create(options: EngineConfig, onProgress?: LoadProgress): Promise<EngineCore> {
    return new Promise((resolve) => {
      resetPeakMemory();
      const { loaded, kv } = loadWithKvBudget(options, onProgress);
      try {
        resolve(new EngineCore(loaded, options, kv, true));
      } catch (e) {
        loaded.model.dispose();
        throw e;
      }
    });
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
    const c = finishEngineOptions(resolved, loaded.config);
    return new EngineCore(loaded, c, kvCacheForLoaded(loaded, c), false, graphBackend);
  }

  get hasUnfinished(): boolean {
    return this.scheduler.hasUnfinished;
  }

  /** Whether a request must go through prepare() before add(): it has a constraint or bad words. */
  static needsPrepare(req: EngineRequest): boolean {
    return req.params.structured !== null || req.params.badWords.length > 0;
  }

  /**
   * Compiles the request's grammar (cached by constraint) and starts its matcher, and tokenises its bad words as vLLM
   * does (the word, and the word after a space where that gives other tokens). An invalid grammar is a TypeError.
   */
  async prepare(req: EngineRequest): Promise<PreparedRequest> {
    const p = req.params;
    const { tokenizer, config } = this.loaded;
    const badWordsTokenIds: number[][] = [];
    for (const word of p.badWords) {
      const alone = await tokenizer.encode(word.trimStart(), { addSpecialTokens: false });
      if (alone.length > 0) badWordsTokenIds.push(alone);
      const spaced = await tokenizer.encode(` ${word.trimStart()}`, { addSpecialTokens: false });
      if (spaced.length > 0 && spaced.length === alone.length && spaced[0] !== alone[0]) badWordsTokenIds.push(spaced);
    }
    if (p.structured === null) return { matcher: null, badWordsTokenIds };
    this.grammars ??= new GrammarCompiler(tokenizer, config.vocabSize, this.eos);
    const matcher = await this.grammars.matcher(p.structured, [...new Set([...this.eos, ...p.stopTokenIds])]);
    return { matcher, badWordsTokenIds };
  }

  /** Queues a request; one with a constraint or bad words takes what prepare() gave for it. */
  add(req: EngineRequest, prepared?: PreparedRequest): void {
    if (prepared === undefined && EngineCore.needsPrepare(req))
      throw new TypeError(
        `EngineCore.add: request ${req.requestId} has a constraint or bad words: pass what prepare() gives for it`,
      );
    const seq = new Sequence(req.requestId, req.promptTokenIds, req.params, this.loaded.config.vocabSize);
    if (prepared) {
      seq.state.matcher = prepared.matcher;
      seq.state.badWordsTokenIds = prepared.badWordsTokenIds;
    }
    try {
      this.scheduler.add(seq);
    } catch (e) {
      seq.state.dispose();
      throw e;
    }
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
   * returns. Each step passes the profiler down: the runner gives it to the input upload, the forward pass and the
   * sampler.
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
    this.counters.record(out, updates.length, this.scheduler.blockManager.numUsedBlocks);
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
        peakUsedBlocks: this.counters.peakUsedBlocks,
        peakBytes: memoryStats()[this.loaded.model.device].peakBytes,
      },
      scheduler: {
        running: this.scheduler.running.length,
        waiting: this.scheduler.waiting.length,
        preempted: this.scheduler.numPreemptions,
      },
      prefixCache: { ...prefixCache, hitRate: prefixCache.queries > 0 ? prefixCache.hits / prefixCache.queries : 0 },
      cudaGraphs: this.runner.graphStats(),
      throughput: this.counters.throughput(),
    };
  }

  /** Starts the peak counters (blocks held, the device's live bytes) again from what is held now. */
  resetPeaks(): void {
    this.counters.peakUsedBlocks = this.scheduler.blockManager.numUsedBlocks;
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
