// The public engine: the request API. The engine core (model, KV cache, scheduler) runs in a worker thread, reached
// through CoreClient; this side checks and tokenizes prompts, detokenizes as tokens arrive, finds stop strings, and
// streams, so the caller's event loop never waits on a step. With dataParallelSize N there are N cores, and the
// Dispatcher picks each request's; a core that dies fails its own requests and the others go on.
import type { LlamaConfig } from '../model/config.js';
import { loadTokenizer } from '../model/open.js';
import type { LoadProgress } from '../model/weights.js';
import type { Trace } from '../profiler.js';
import { type ResolvedSamplingParams, resolveSamplingParams, type SamplingParams } from '../sampling/params.js';
import { MiniVllmError } from '../errors.js';
import { describeValue } from '../tensor.js';
import { checkConstraint } from '../structured/grammars.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { EngineCores } from './cores.js';
import type { RequestOutput } from './engine-core.js';
import {
  checkDataParallel,
  type EngineOptions,
  finishEngineOptions,
  type EngineConfig,
  resolveEngineOptions,
} from './options.js';
import { checkContextLength, type Prompt, promptTokenIds } from './prompt.js';
import { type GenerationResult, RequestState, type StreamDelta } from './request-state.js';
import type { CoreReport, EngineStatsTotal } from './stats.js';

export type { Prompt };

export interface RequestOptions {
  /** Default: a fresh id. Must not be in use by an unfinished request. */
  requestId?: string;
  /** Aborting it ends the request with finishReason 'abort' (the text so far is kept). */
  signal?: AbortSignal;
}

/** A streamed request: iterate for its deltas; `result` resolves to the whole result when it ends. */
export interface GenerationStream extends AsyncIterableIterator<StreamDelta> {
  readonly result: Promise<GenerationResult>;
}

export interface CreateOptions extends EngineOptions {
  /** Weight loading progress: bytes written to the device so far, and in all. */
  onProgress?: LoadProgress;
  /**
   * false: create() returns once the options and the tokenizer are checked, before any model loads; start() loads it
   * (a server listens first, and says it is not ready meanwhile). Default true.
   */
  start?: boolean;
}

interface Prepared {
  ids: number[];
  params: ResolvedSamplingParams;
  arrival: number;
}

interface InFlight {
  state: RequestState;
  reject: (e: Error) => void;
  /** The core it runs on. */
  rank: number;
}

export class InferenceEngine {
  readonly tokenizer: Tokenizer;
  readonly config: LlamaConfig;
  /** The options in force, maxModelLen filled in. */
  readonly options: EngineConfig;
  private readonly cores: EngineCores;
  private readonly requests = new Map<string, InFlight>();
  private nextRequest = 0;

  private constructor(
    options: EngineConfig,
    tokenizer: Tokenizer,
    config: LlamaConfig,
    onProgress: LoadProgress | undefined,
  ) {
    this.options = options;
    this.tokenizer = tokenizer;
    this.config = config;
    this.cores = new EngineCores(options, onProgress, (rank) => ({
      outputs: (outputs, now) => this.receive(outputs, now),
      stepFailed: (ids, error) => ids.forEach((id) => this.failRequest(id, error)),
      died: (error) => this.coreDied(rank, error),
    }));
  }

  /** Checks the options, loads the tokenizer here and the model in the engine's worker thread, and starts it. */
  static async create(options: CreateOptions = {}): Promise<InferenceEngine> {
    const { onProgress, start = true, ...rest } = options ?? {};
    if (typeof start !== 'boolean')
      throw new TypeError(`InferenceEngine: start must be a boolean, got ${describeValue(start)}`);
    if (onProgress !== undefined && typeof onProgress !== 'function')
      throw new TypeError(`InferenceEngine: onProgress must be a function, got ${describeValue(onProgress)}`);
    const resolved = resolveEngineOptions(rest);
    checkDataParallel(resolved);
    const { tokenizer, config } = await loadTokenizer(
      resolved.model,
      resolved.tokenizer === null ? {} : { tokenizer: resolved.tokenizer },
    );
    const engine = new InferenceEngine(finishEngineOptions(resolved, config), tokenizer, config, onProgress);
    if (!start) return engine;
    try {
      await engine.start();
    } catch (e) {
      await engine.stop().catch(() => undefined); // the cores that did load
      throw e;
    }
    return engine;
  }

  /** Whether a worker is up with the model loaded (with several cores: at least one). */
  get started(): boolean {
    return this.cores.list.some((c) => c.info !== null);
  }

  /** The model's dtype on the device, e.g. 'float32'. */
  get dtype(): string {
    return this.cores.list.find((c) => c.info)?.info?.dtype ?? this.options.dtype;
  }

  /** Seconds the workers took to load the model (the slowest core). */
  get loadSeconds(): number {
    return Math.max(0, ...this.cores.list.map((c) => c.info?.loadSeconds ?? 0));
  }

  /** Each core's state and load, now (getStats() adds the cores' counters). */
  coreStates(): Omit<CoreReport, 'stats'>[] {
    return this.cores.states();
  }

  /**
   * Starts the workers and loads the model (create() does this; again after stop(), or after a core died, to bring
   * the missing cores back). Rejects if a core fails to load; the others stay up.
   */
  async start(): Promise<void> {
    await Promise.all(this.cores.list.map((c) => c.start()));
  }

  /** Aborts what is in flight, shuts the workers down and frees their device memory. start() brings them back. */
  async stop(): Promise<void> {
    let drained: Promise<unknown> | null = null;
    const drain = () =>
      (drained ??= Promise.all([...this.requests.values()].map(({ state }) => state.enqueue(() => state.abort()))));
    await Promise.all(this.cores.list.map((c) => c.stop(drain)));
  }

  /**
   * Ends one core's worker as a crash would: its requests fail with ERR_ENGINE_DEAD and the other cores go on;
   * start() brings it back. For fault drills and their tests.
   */
  async killCore(rank: number): Promise<void> {
    await this.cores.kill(rank);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Generates a completion of one prompt (text or token ids)... */
  generate(prompt: Prompt, params?: SamplingParams, opts?: RequestOptions): Promise<GenerationResult>;
  /** ... or of each of several, with one set of params or one per prompt. Resolves when all have finished. */
  generate(
    prompts: Prompt[],
    params?: SamplingParams | SamplingParams[],
    opts?: Omit<RequestOptions, 'requestId'>,
  ): Promise<GenerationResult[]>;
  async generate(
    prompts: Prompt | Prompt[],
    params: SamplingParams | SamplingParams[] = {},
    opts: RequestOptions = {},
  ): Promise<GenerationResult | GenerationResult[]> {
    const single = typeof prompts === 'string' || (Array.isArray(prompts) && typeof prompts[0] === 'number');
    if (single) {
      if (Array.isArray(params))
        throw new TypeError('InferenceEngine.generate: one prompt takes one SamplingParams object, got an array');
      return this.submit(await this.prepare(prompts as Prompt, params, 'prompt'), opts, () => undefined);
    }
    if (!Array.isArray(prompts) || prompts.length === 0)
      throw new TypeError(
        `InferenceEngine.generate: prompts must be a prompt or a non-empty array of them, got ` +
          `${describeValue(prompts)}`,
      );
    if (Array.isArray(params) && params.length !== prompts.length)
      throw new RangeError(
        `InferenceEngine.generate: params has ${params.length} entries for ${prompts.length} prompts`,
      );
    if (opts.requestId !== undefined)
      throw new TypeError('InferenceEngine.generate: requestId names one request; several prompts get fresh ids');
    // Every prompt is checked before any is sent: a bad one fails the call without leaving the others running.
    const list = await Promise.all(
      (prompts as Prompt[]).map((p, i) =>
        this.prepare(p, Array.isArray(params) ? params[i]! : params, `prompts[${i}]`),
      ),
    );
    return Promise.all(list.map((p) => this.submit(p, opts, () => undefined)));
  }

  /** Streams one completion: an async iterator of deltas, the last with finishReason set. Breaking out aborts it. */
  stream(prompt: Prompt, params: SamplingParams = {}, opts: RequestOptions = {}): GenerationStream {
    const queue: StreamDelta[] = [];
    let wake: (() => void) | null = null;
    let error: Error | null = null;
    let done = false;
    let requestId: string | null = null;
    const started = this.prepare(prompt, params, 'prompt').then((p) =>
      this.submit(
        p,
        opts,
        (d) => {
          queue.push(d);
          wake?.();
        },
        (id) => {
          requestId = id;
        },
      ),
    );
    started.catch((e: Error) => {
      error = e;
      wake?.();
    });
    const abort = (id: string) => this.abort(id);
    return {
      result: started,
      [Symbol.asyncIterator]() {
        return this;
      },
      async next(): Promise<IteratorResult<StreamDelta>> {
        for (;;) {
          if (queue.length > 0) {
            const d = queue.shift()!;
            if (d.finishReason !== null) done = true;
            return { value: d, done: false };
          }
          if (error) throw error;
          if (done) return { value: undefined, done: true };
          await new Promise<void>((r) => {
            wake = r;
          });
          wake = null;
        }
      },
      async return(): Promise<IteratorResult<StreamDelta>> {
        if (!done && requestId !== null) await abort(requestId);
        done = true;
        queue.length = 0;
        return { value: undefined, done: true };
      },
    };
  }

  /**
   * Ends a request now with finishReason 'abort'; its KV blocks are free when this resolves. Resolves to false if no
   * such request is in flight.
   */
  async abort(requestId: string): Promise<boolean> {
    const f = this.requests.get(requestId);
    const r = f?.state;
    if (!f || !r || r.finished) return false;
    await Promise.all([
      this.cores.list[f.rank]!.call({ type: 'abort', requestIds: [requestId], replyId: 0 }),
      r.enqueue(() => r.abort()),
    ]);
    return true;
  }

  /**
   * Memory, scheduler, prefix-cache and throughput counters, fresh from the engine cores: their total, and under
   * `cores` each core's own with its state and load. Rejects when no core is up.
   */
  async getStats(): Promise<EngineStatsTotal> {
    return this.cores.stats();
  }

  /** Starts the peak counters in `getStats().memory` (peakBytes, peakUsedBlocks) again from what is held now. */
  async resetPeaks(): Promise<void> {
    await this.cores.onLive({ type: 'resetPeaks', replyId: 0 });
  }

  /**
   * Profiles the engine's next `maxSteps` steps (default 5): every op, with its shapes, as a Chrome / Perfetto trace
   * that `stopProfile()` returns. On CUDA the ops are also timed with CUDA events and named with NVTX ranges.
   */
  async startProfile(opts: { maxSteps?: number } = {}): Promise<void> {
    const maxSteps = opts.maxSteps ?? 5;
    if (!Number.isInteger(maxSteps) || maxSteps < 1)
      throw new RangeError(`startProfile: maxSteps must be a positive integer, got ${describeValue(maxSteps)}`);
    await this.cores.onLive({ type: 'profile', action: 'start', maxSteps, replyId: 0 });
  }

  /** Stops profiling; the trace of the steps recorded since startProfile(); with several cores, core r as pid r. */
  async stopProfile(): Promise<Trace> {
    return this.cores.stopProfile();
  }

  /**
   * The params resolved and checked, the constraint's grammar parsed: a TypeError / RangeError saying what is wrong
   * (the server answers 400 with it before a stream opens).
   */
  async checkParams(raw: SamplingParams): Promise<ResolvedSamplingParams> {
    const params = resolveSamplingParams(raw, this.config.vocabSize);
    if (params.structured !== null) await checkConstraint(params.structured);
    return params;
  }

  /** Checks the params and the prompt, and tokenizes it: everything about a request that can fail before it is sent. */
  private async prepare(prompt: Prompt, raw: SamplingParams, where: string): Promise<Prepared> {
    const arrival = performance.now();
    const params = await this.checkParams(raw);
    const ids = await promptTokenIds(prompt, this.tokenizer, this.config.vocabSize, `InferenceEngine: ${where}`);
    checkContextLength(ids.length, 1, this.options.maxModelLen, `InferenceEngine: ${where}`);
    return { ids, params, arrival };
  }

  private async submit(
    { ids, params, arrival }: Prepared,
    opts: RequestOptions,
    onDelta: (d: StreamDelta) => void,
    onId?: (id: string) => void,
  ): Promise<GenerationResult> {
    if (typeof opts !== 'object' || opts === null)
      throw new TypeError(`InferenceEngine: options must be an object, got ${describeValue(opts)}`);
    let requestId = opts.requestId;
    if (requestId !== undefined && (typeof requestId !== 'string' || requestId.length === 0))
      throw new TypeError(`InferenceEngine: requestId must be a non-empty string, got ${describeValue(requestId)}`);
    if (requestId !== undefined && this.requests.has(requestId))
      throw new RangeError(`InferenceEngine: request id ${JSON.stringify(requestId)} is already in flight`);
    requestId ??= `req-${this.nextRequest++}`;
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw new TypeError(`InferenceEngine: signal must be an AbortSignal, got ${describeValue(signal)}`);
    // No await when a core is up: the request must be in `requests` before another call checks its id.
    const prompt = this.cores.dispatcher.key(ids);
    const rank = this.cores.pick(prompt) ?? (await this.cores.waitFor(prompt));
    const core = this.cores.list[rank]!;
    onId?.(requestId);
    return new Promise<GenerationResult>((resolve, reject) => {
      const id = requestId;
      const onAbort = () => void this.abort(id).catch(() => undefined);
      const state = new RequestState(
        id,
        ids,
        params,
        this.tokenizer,
        arrival,
        (d) => {
          onDelta(d);
          if (d.finishReason !== null) {
            this.requests.delete(id);
            this.cores.dispatcher.release(id);
            signal?.removeEventListener('abort', onAbort);
            core.idle();
            resolve(state.result());
          }
        },
        () => core.abortInCore([id]),
      ); // a stop string: the core hears of it before anyone sees the last delta
      if (core.stopping) {
        state.abort(); // arrived (or finished tokenizing) while stop() was shutting down: it ends like those in flight
        return;
      }
      this.requests.set(id, { state, reject, rank });
      this.cores.dispatcher.assign(id, rank, prompt, params.maxTokens);
      core.add({ requestId: id, promptTokenIds: ids, params });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A step's tokens, each handed to its request after what that request is still decoding. */
  private receive(outputs: RequestOutput[], now: number): void {
    for (const out of outputs) {
      const f = this.requests.get(out.requestId);
      if (!f) continue;
      this.cores.dispatcher.progress(out.requestId);
      const r = f.state;
      r.enqueue(() => r.take(out, now)).catch((e: Error) => this.failRequest(r.requestId, e));
    }
  }

  /** A core's worker died: its requests fail (the others go on), and what it had cached is forgotten. */
  private coreDied(rank: number, error: Error): void {
    this.cores.dispatcher.forget(rank);
    const n = this.cores.list.length;
    const e = new MiniVllmError(
      `engine core ${rank} died: ${error.message}` + (n > 1 ? `; the other ${n - 1} core(s) go on serving` : ''),
      'ERR_ENGINE_DEAD',
    );
    for (const [id, f] of this.requests) if (f.rank === rank) this.failRequest(id, e);
  }

  /** Ends a request with an error (the core may still be generating it: it is told to stop). */
  private failRequest(requestId: string, e: Error): void {
    const inFlight = this.requests.get(requestId);
    if (!inFlight) return;
    this.requests.delete(requestId);
    this.cores.dispatcher.release(requestId);
    const core = this.cores.list[inFlight.rank]!;
    core.abortInCore([requestId]);
    inFlight.reject(e);
    core.idle();
  }
}
