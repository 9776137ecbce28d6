// The public engine. The engine core (model, KV cache, scheduler) runs in a worker thread; this side tokenizes,
// detokenizes as tokens arrive, finds stop strings, and streams, so the caller's event loop never waits on a step.
import { Worker } from 'node:worker_threads';
import type { LlamaConfig } from '../model/config.js';
import { loadTokenizer } from '../model/loader.js';
import type { LoadProgress } from '../model/weights.js';
import type { Trace } from '../profiler.js';
import { type ResolvedSamplingParams, resolveSamplingParams, type SamplingParams } from '../sampling/params.js';
import { describeValue } from '../tensor.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { EngineRequest, EngineStats } from './engine-core.js';
import { type EngineOptions, finishEngineOptions, type ResolvedEngineOptions, resolveEngineOptions } from './options.js';
import { type CoreInfo, deserializeError, type FromCore, type ToCore, type WorkerData } from './protocol.js';
import { type GenerationResult, RequestState, type StreamDelta } from './request-state.js';

export type Prompt = string | number[];

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
}

interface Prepared {
  ids: number[];
  params: ResolvedSamplingParams;
  arrival: number;
}

interface InFlight {
  state: RequestState;
  reject: (e: Error) => void;
}

interface Reply {
  resolve: (m: Extract<FromCore, { type: 'reply' }>) => void;
  reject: (e: Error) => void;
}

export class InferenceEngine {
  readonly tokenizer: Tokenizer;
  readonly config: LlamaConfig;
  /** The options in force, maxModelLen filled in. */
  readonly options: ResolvedEngineOptions & { maxModelLen: number };
  private readonly onProgress: LoadProgress | undefined;
  private worker: Worker | null = null;
  private info: CoreInfo | null = null;
  private starting: Promise<void> | null = null;
  private readonly requests = new Map<string, InFlight>();
  private readonly replies = new Map<number, Reply>();
  private nextReply = 0;
  private nextRequest = 0;
  private failure: Error | null = null;
  private stopping = false;
  private readonly adds: EngineRequest[] = [];

  private constructor(options: ResolvedEngineOptions & { maxModelLen: number }, tokenizer: Tokenizer, config: LlamaConfig, onProgress: LoadProgress | undefined) {
    this.options = options;
    this.tokenizer = tokenizer;
    this.config = config;
    this.onProgress = onProgress;
  }

  /** Checks the options, loads the tokenizer here and the model in the engine's worker thread, and starts it. */
  static async create(options: CreateOptions = {}): Promise<InferenceEngine> {
    const { onProgress, ...rest } = options ?? {};
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError(`InferenceEngine: onProgress must be a function, got ${describeValue(onProgress)}`);
    const resolved = resolveEngineOptions(rest);
    const { tokenizer, config } = await loadTokenizer(resolved.model, resolved.tokenizer === null ? {} : { tokenizer: resolved.tokenizer });
    const engine = new InferenceEngine(finishEngineOptions(resolved, config), tokenizer, config, onProgress);
    await engine.start();
    return engine;
  }

  /** Whether the worker is up with the model loaded. */
  get started(): boolean {
    return this.info !== null;
  }

  /** The model's dtype on the device, e.g. 'float32'. */
  get dtype(): string {
    return this.info?.dtype ?? this.options.dtype;
  }

  /** Seconds the worker took to load the model. */
  get loadSeconds(): number {
    return this.info?.loadSeconds ?? 0;
  }

  /** Starts the worker and loads the model (create() does this; again after stop() to restart). */
  start(): Promise<void> {
    if (this.info) return Promise.resolve();
    this.starting ??= new Promise<void>((resolve, reject) => {
      this.failure = null;
      this.stopping = false;
      const data: WorkerData = { options: this.options };
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
      this.worker = worker;
      worker.on('message', (m: FromCore) => {
        if (m.type === 'ready') {
          this.info = m.info;
          this.idle();
          resolve();
        } else if (m.type === 'failed') {
          reject(deserializeError(m.error));
        } else this.receive(m);
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        const e = this.failure ?? new Error(`the engine worker exited (code ${code})${this.info ? '' : ' before the model was loaded'}`);
        reject(e);
        if (this.stopping) {
          this.worker = null;
          this.info = null;
        } else this.fail(e);
      });
    }).finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  /** Aborts what is in flight, shuts the worker down and frees its device memory. start() brings it back. */
  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const worker = this.worker;
    if (!worker || !this.info) return;
    this.stopping = true;
    worker.ref(); // until it has exited
    await Promise.all([...this.requests.values()].map(({ state }) => state.then(() => state.abort())));
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    try {
      await this.call({ type: 'shutdown', replyId: 0 });
    } finally {
      await exited;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Generates a completion of one prompt (text or token ids)... */
  generate(prompt: Prompt, params?: SamplingParams, opts?: RequestOptions): Promise<GenerationResult>;
  /** ... or of each of several, with one set of params or one per prompt. Resolves when all have finished. */
  generate(prompts: Prompt[], params?: SamplingParams | SamplingParams[], opts?: Omit<RequestOptions, 'requestId'>): Promise<GenerationResult[]>;
  async generate(prompts: Prompt | Prompt[], params: SamplingParams | SamplingParams[] = {}, opts: RequestOptions = {}): Promise<GenerationResult | GenerationResult[]> {
    const single = typeof prompts === 'string' || (Array.isArray(prompts) && typeof prompts[0] === 'number');
    if (single) {
      if (Array.isArray(params)) throw new TypeError('InferenceEngine.generate: one prompt takes one SamplingParams object, got an array');
      return this.submit(await this.prepare(prompts as Prompt, params, 'prompt'), opts, () => undefined);
    }
    if (!Array.isArray(prompts) || prompts.length === 0) throw new TypeError(`InferenceEngine.generate: prompts must be a prompt or a non-empty array of them, got ${describeValue(prompts)}`);
    if (Array.isArray(params) && params.length !== prompts.length) throw new RangeError(`InferenceEngine.generate: params has ${params.length} entries for ${prompts.length} prompts`);
    if (opts.requestId !== undefined) throw new TypeError('InferenceEngine.generate: requestId names one request; several prompts get fresh ids');
    // Every prompt is checked before any is sent: a bad one fails the call without leaving the others running.
    const list = await Promise.all((prompts as Prompt[]).map((p, i) => this.prepare(p, Array.isArray(params) ? params[i]! : params, `prompts[${i}]`)));
    return Promise.all(list.map((p) => this.submit(p, opts, () => undefined)));
  }

  /** Streams one completion: an async iterator of deltas, the last with finishReason set. Breaking out aborts it. */
  stream(prompt: Prompt, params: SamplingParams = {}, opts: RequestOptions = {}): GenerationStream {
    const queue: StreamDelta[] = [];
    let wake: (() => void) | null = null;
    let error: Error | null = null;
    let done = false;
    let requestId: string | null = null;
    const started = this.prepare(prompt, params, 'prompt').then((p) => this.submit(p, opts, (d) => {
      queue.push(d);
      wake?.();
    }, (id) => {
      requestId = id;
    }));
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
    const r = this.requests.get(requestId)?.state;
    if (!r || r.finished) return false;
    await Promise.all([this.call({ type: 'abort', requestIds: [requestId], replyId: 0 }), r.then(() => r.abort())]);
    return true;
  }

  /** Memory, scheduler, prefix-cache and throughput counters, fresh from the engine core. */
  async getStats(): Promise<EngineStats> {
    const m = await this.call({ type: 'stats', replyId: 0 });
    return m.stats!;
  }

  /** Starts the peak counters in `getStats().memory` (peakBytes, peakUsedBlocks) again from what is held now. */
  async resetPeaks(): Promise<void> {
    await this.call({ type: 'resetPeaks', replyId: 0 });
  }

  /**
   * Profiles the engine's next `maxSteps` steps (default 5): every op, with its shapes, as a Chrome / Perfetto trace
   * that `stopProfile()` returns. On CUDA the ops are also timed with CUDA events and named with NVTX ranges.
   */
  async startProfile(opts: { maxSteps?: number } = {}): Promise<void> {
    const maxSteps = opts.maxSteps ?? 5;
    if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new RangeError(`startProfile: maxSteps must be a positive integer, got ${describeValue(maxSteps)}`);
    await this.call({ type: 'profile', action: 'start', maxSteps, replyId: 0 });
  }

  /** Stops profiling; the trace of the steps recorded since startProfile(). */
  async stopProfile(): Promise<Trace> {
    const m = await this.call({ type: 'profile', action: 'stop', replyId: 0 });
    return m.trace!;
  }

  /** Checks the params and tokenizes the prompt: everything about a request that can fail before it is sent. */
  private async prepare(prompt: Prompt, raw: SamplingParams, where: string): Promise<Prepared> {
    const arrival = performance.now();
    const params = resolveSamplingParams(raw, this.config.vocabSize);
    const ids = await this.encode(prompt, where);
    if (ids.length >= this.options.maxModelLen)
      throw new RangeError(`InferenceEngine: ${where} has ${ids.length} tokens; maxModelLen is ${this.options.maxModelLen}, which must leave room for one generated token`);
    return { ids, params, arrival };
  }

  private async submit({ ids, params, arrival }: Prepared, opts: RequestOptions, onDelta: (d: StreamDelta) => void,
    onId?: (id: string) => void): Promise<GenerationResult> {
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`InferenceEngine: options must be an object, got ${describeValue(opts)}`);
    let requestId = opts.requestId;
    if (requestId !== undefined && (typeof requestId !== 'string' || requestId.length === 0))
      throw new TypeError(`InferenceEngine: requestId must be a non-empty string, got ${describeValue(requestId)}`);
    if (requestId !== undefined && this.requests.has(requestId)) throw new RangeError(`InferenceEngine: request id ${JSON.stringify(requestId)} is already in flight`);
    requestId ??= `req-${this.nextRequest++}`;
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError(`InferenceEngine: signal must be an AbortSignal, got ${describeValue(signal)}`);
    if (!this.info) await (this.starting ?? Promise.reject(this.failure ?? new Error('InferenceEngine: the engine is stopped; call start()')));
    if (this.failure) throw this.failure;
    onId?.(requestId);
    return new Promise<GenerationResult>((resolve, reject) => {
      const id = requestId;
      const state = new RequestState(id, ids, params, this.tokenizer, arrival, (d) => {
        // A stop string is found here, in the text: the core is told before anyone sees the last delta.
        if (d.finishReason === 'stop' && typeof d.stopReason === 'string') this.post({ type: 'abort', requestIds: [id], replyId: -1 });
        onDelta(d);
        if (d.finishReason !== null) {
          this.requests.delete(id);
          signal?.removeEventListener('abort', onAbort);
          this.idle();
          resolve(state.result());
        }
      });
      const onAbort = () => void this.abort(id).catch(() => undefined);
      if (this.stopping) {
        state.abort(); // arrived (or finished tokenizing) while stop() was shutting down: it ends like those in flight
        return;
      }
      this.requests.set(id, { state, reject });
      this.worker!.ref();
      this.queueAdd({ requestId: id, promptTokenIds: ids, params });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async encode(prompt: Prompt, where: string): Promise<number[]> {
    if (typeof prompt === 'string') {
      const ids = await this.tokenizer.encode(prompt);
      if (ids.length === 0) throw new RangeError(`InferenceEngine: ${where} encodes to no tokens (and the tokenizer adds no BOS)`);
      return ids;
    }
    const V = this.config.vocabSize;
    if (!Array.isArray(prompt) || prompt.length === 0 || !prompt.every((t) => Number.isInteger(t) && t >= 0 && t < V))
      throw new RangeError(`InferenceEngine: ${where} must be a string or a non-empty array of token ids in [0, ${V}), got ${describeValue(prompt)}`);
    return Array.from(prompt);
  }

  private receive(m: FromCore): void {
    const now = performance.now();
    switch (m.type) {
      case 'progress':
        this.onProgress?.(m.done, m.total);
        break;
      case 'outputs':
        for (const out of m.outputs) {
          const r = this.requests.get(out.requestId)?.state;
          if (!r) continue;
          r.then(() => r.take(out, now)).catch((e: Error) => this.failRequest(r, e));
        }
        break;
      case 'stepError': {
        const error = deserializeError(m.error);
        for (const id of m.requestIds) {
          const r = this.requests.get(id)?.state;
          if (r) this.failRequest(r, error);
        }
        break;
      }
      case 'reply': {
        const reply = this.replies.get(m.replyId);
        this.replies.delete(m.replyId);
        if (!reply) break;
        if (m.error) reply.reject(deserializeError(m.error));
        else reply.resolve(m);
        this.idle();
        break;
      }
      default:
        break;
    }
  }

  private call(m: Extract<ToCore, { replyId: number }>): Promise<Extract<FromCore, { type: 'reply' }>> {
    if (!this.worker || !this.info) return Promise.reject(this.failure ?? new Error('InferenceEngine: the engine is stopped; call start()'));
    const replyId = ++this.nextReply;
    return new Promise((resolve, reject) => {
      this.replies.set(replyId, { resolve, reject });
      this.worker!.ref();
      this.post({ ...m, replyId });
    });
  }

  /** Requests made in the same turn of the event loop go to the core in one message, so one step admits them all. */
  private queueAdd(r: EngineRequest): void {
    if (this.adds.length === 0) queueMicrotask(() => this.flushAdds());
    this.adds.push(r);
  }

  private flushAdds(): void {
    if (this.adds.length > 0) this.worker?.postMessage({ type: 'add', requests: this.adds.splice(0) } satisfies ToCore);
  }

  /** Queued adds go first, so the core never hears of an abort before the request it aborts. */
  private post(m: ToCore): void {
    this.flushAdds();
    this.worker?.postMessage(m);
  }

  private failRequest(r: RequestState, e: Error): void {
    const inFlight = this.requests.get(r.requestId);
    if (!inFlight) return;
    this.requests.delete(r.requestId);
    this.post({ type: 'abort', requestIds: [r.requestId], replyId: -1 }); // the core may still be generating it
    inFlight.reject(e);
    this.idle();
  }

  /** The worker or its thread died: every request and call in flight fails with the reason. */
  private fail(e: Error): void {
    this.failure ??= e;
    this.worker = null;
    this.info = null;
    for (const { state } of [...this.requests.values()]) this.failRequest(state, e);
    for (const reply of this.replies.values()) reply.reject(e);
    this.replies.clear();
  }

  /** With nothing in flight the worker does not keep the process alive. */
  private idle(): void {
    if (this.worker && !this.stopping && this.requests.size === 0 && this.replies.size === 0) this.worker.unref();
  }
}
