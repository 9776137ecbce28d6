// The caller's side of the engine core's worker thread: starting it (the model loads there), calls that wait for a
// reply (stats, aborts, profiles, shutdown), the requests it is sent, and the messages it sends back, routed to the
// owner (InferenceEngine). The worker keeps the process alive only while something is in flight.
import { Worker } from 'node:worker_threads';
import type { LoadProgress } from '../model/weights.js';
import type { EngineRequest, RequestOutput } from './engine-core.js';
import type { EngineConfig } from './options.js';
import { type CoreInfo, deserializeError, type FromCore, type ToCore, type WorkerData } from './protocol.js';

/** What the client hands its owner. */
export interface CoreClientOwner {
  /** A step's tokens, received at `now` (performance.now()). */
  outputs(outputs: RequestOutput[], now: number): void;
  /** A step failed: these requests were aborted in the core and end with the error. */
  stepFailed(requestIds: string[], error: Error): void;
  /** The worker or its thread died: everything in flight fails with the reason. */
  died(error: Error): void;
  /** Whether any request is in flight (then the worker keeps the process alive). */
  busy(): boolean;
  onProgress?: LoadProgress | undefined;
}

type Reply = Extract<FromCore, { type: 'reply' }>;

export type CoreState = 'starting' | 'ready' | 'dead' | 'stopped';

export class CoreClient {
  private worker: Worker | null = null;
  private info_: CoreInfo | null = null;
  private starting: Promise<void> | null = null;
  private failure_: Error | null = null;
  private stopping_ = false;
  private readonly replies = new Map<number, { resolve: (m: Reply) => void; reject: (e: Error) => void }>();
  private nextReply = 0;
  private readonly adds: EngineRequest[] = [];

  constructor(
    private readonly options: EngineConfig,
    private readonly owner: CoreClientOwner,
    /** This core's rank and CPU threads (WorkerData). */
    private readonly placement: { rank: number; threads: number | null } = { rank: 0, threads: null },
  ) {}

  /** The worker is up with the model loaded: its dtype and load time. */
  get info(): CoreInfo | null {
    return this.info_;
  }

  /** Why the worker died, until start() brings it back. */
  get failure(): Error | null {
    return this.failure_;
  }

  /** Where the worker is: loading the model, serving, dead (until start()), or stopped (or never started). */
  get state(): CoreState {
    if (this.failure_) return 'dead';
    if (this.info_) return 'ready';
    return this.starting ? 'starting' : 'stopped';
  }

  /** stop() is shutting the worker down. */
  get stopping(): boolean {
    return this.stopping_;
  }

  /** Starts the worker and loads the model; resolves when it is ready. */
  start(): Promise<void> {
    if (this.info_) return Promise.resolve();
    this.starting ??= new Promise<void>((resolve, reject) => {
      this.failure_ = null;
      this.stopping_ = false;
      const data: WorkerData = { options: this.options, ...this.placement };
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
      this.worker = worker;
      worker.on('message', (m: FromCore) => {
        if (m.type === 'ready') {
          this.info_ = m.info;
          this.idle();
          resolve();
        } else if (m.type === 'failed') {
          reject(deserializeError(m.error));
        } else this.receive(m);
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        const e =
          this.failure_ ??
          new Error(`the engine worker exited (code ${code})${this.info_ ? '' : ' before the model was loaded'}`);
        reject(e);
        if (this.stopping_) {
          this.worker = null;
          this.info_ = null;
        } else this.fail(e);
      });
    }).finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  /** Resolves once the worker is ready; rejects if it is stopped or failed to start. */
  async ready(): Promise<void> {
    if (!this.info_)
      await (this.starting ??
        Promise.reject(this.failure_ ?? new Error('InferenceEngine: the engine is stopped; call start()')));
    if (this.failure_) throw this.failure_;
  }

  /**
   * Shuts the worker down once `drain` (the owner ending what is in flight) has resolved; resolves when it has
   * exited and freed its device memory. Nothing to do when it is not running.
   */
  async stop(drain: () => Promise<unknown>): Promise<void> {
    await this.starting?.catch(() => undefined);
    const worker = this.worker;
    if (!worker || !this.info_) return;
    this.stopping_ = true;
    worker.ref(); // until it has exited
    await drain();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    try {
      await this.call({ type: 'shutdown', replyId: 0 });
    } finally {
      await exited;
    }
  }

  /** Ends the worker as a crash would (the owner hears died()): for fault drills. Nothing to do when it is down. */
  async terminate(): Promise<void> {
    await this.worker?.terminate();
  }

  /** Sends a message that the core answers, and waits for the answer. */
  call(m: Extract<ToCore, { replyId: number }>): Promise<Reply> {
    if (!this.worker || !this.info_)
      return Promise.reject(this.failure_ ?? new Error('InferenceEngine: the engine is stopped; call start()'));
    const replyId = ++this.nextReply;
    return new Promise((resolve, reject) => {
      this.replies.set(replyId, { resolve, reject });
      this.worker!.ref();
      this.post({ ...m, replyId });
    });
  }

  /** Requests made in the same turn of the event loop go to the core in one message, so one step admits them all. */
  add(r: EngineRequest): void {
    this.worker?.ref();
    if (this.adds.length === 0) queueMicrotask(() => this.flushAdds());
    this.adds.push(r);
  }

  /** Tells the core to stop generating these requests, without waiting for it. */
  abortInCore(requestIds: string[]): void {
    this.post({ type: 'abort', requestIds, replyId: -1 });
  }

  /** With nothing in flight the worker does not keep the process alive. */
  idle(): void {
    if (this.worker && !this.stopping_ && !this.owner.busy() && this.replies.size === 0) this.worker.unref();
  }

  private flushAdds(): void {
    if (this.adds.length > 0) this.worker?.postMessage({ type: 'add', requests: this.adds.splice(0) } satisfies ToCore);
  }

  /** Queued adds go first, so the core never hears of an abort before the request it aborts. */
  private post(m: ToCore): void {
    this.flushAdds();
    this.worker?.postMessage(m);
  }

  private receive(m: FromCore): void {
    switch (m.type) {
      case 'progress':
        this.owner.onProgress?.(m.done, m.total);
        break;
      case 'outputs':
        this.owner.outputs(m.outputs, performance.now());
        break;
      case 'stepError':
        this.owner.stepFailed(m.requestIds, deserializeError(m.error));
        break;
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

  private fail(e: Error): void {
    this.failure_ ??= e;
    this.worker = null;
    this.info_ = null;
    this.owner.died(e);
    for (const reply of this.replies.values()) reply.reject(e);
    this.replies.clear();
  }
}
