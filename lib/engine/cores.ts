// The engine's cores: one CoreClient (worker thread: model, KV cache, scheduler) per data-parallel rank, the
// Dispatcher that picks a request's core, and what concerns them all: their states, their counters summed, calls to
// every live one, and waiting for one to be up. InferenceEngine owns the requests and asks this where to send them.
import { MiniVllmError } from '../errors.js';
import type { Trace } from '../profiler.js';
import { numThreads } from '../runtime.js';
import type { LoadProgress } from '../model/weights.js';
import { CoreClient, type CoreClientOwner } from './core-client.js';
import { Dispatcher, type PromptKey } from './dispatcher.js';
import type { EngineConfig } from './options.js';
import { type CoreReport, type EngineStatsTotal, totalStats } from './stats.js';

type Call = Parameters<CoreClient['call']>[0];

export class EngineCores {
  readonly list: CoreClient[];
  readonly dispatcher: Dispatcher;

  constructor(
    options: EngineConfig,
    onProgress: LoadProgress | undefined,
    owner: (rank: number) => Pick<CoreClientOwner, 'outputs' | 'stepFailed' | 'died'>,
  ) {
    const n = options.dataParallelSize;
    this.dispatcher = new Dispatcher(n, options.blockSize);
    // On the CPU each of several cores gets a pool of its own, an equal share of the threads.
    const threads = n > 1 && options.device === 'cpu' ? Math.max(1, Math.floor(numThreads() / n)) : null;
    this.list = Array.from(
      { length: n },
      (_, rank) =>
        new CoreClient(
          options,
          {
            ...owner(rank),
            busy: () => this.dispatcher.requestsOn(rank) > 0,
            onProgress: rank === 0 ? onProgress : undefined, // the cores load alike: one bar
          },
          { rank, threads },
        ),
    );
  }

  /** Each core's state and load. */
  states(): Omit<CoreReport, 'stats'>[] {
    const loads = this.dispatcher.loads();
    return this.list.map((c, rank) => ({
      rank,
      state: c.state,
      error: c.failure?.message ?? null,
      requests: loads[rank]!.requests,
      outstandingTokens: loads[rank]!.outstandingTokens,
    }));
  }

  /** Every ready core's counters and their total; rejects when none is ready (with why: stopped, or dead). */
  async stats(): Promise<EngineStatsTotal> {
    const states = this.states();
    const stats = await Promise.all(
      this.list.map((c) =>
        c.state === 'ready'
          ? c.call({ type: 'stats', replyId: 0 }).then(
              (m) => m.stats!,
              () => null,
            )
          : Promise.resolve(null),
      ),
    );
    const cores = states.map((s, rank) => ({ ...s, stats: stats[rank] ?? null }));
    const live = cores.flatMap((c) => (c.stats ? [c.stats] : []));
    if (live.length === 0) {
      await this.list[0]!.call({ type: 'stats', replyId: 0 });
      throw new MiniVllmError('InferenceEngine: no engine core answered', 'ERR_ENGINE_DEAD');
    }
    return { ...totalStats(live), cores };
  }

  /** Sends a call to every ready core (to the first when none is, so that it rejects with the reason). */
  onLive(m: Call) {
    const live = this.list.filter((c) => c.state === 'ready');
    return Promise.all((live.length > 0 ? live : [this.list[0]!]).map((c) => c.call(m)));
  }

  /** Stops profiling on every ready core; with several, one trace with core r's events as pid r. */
  async stopProfile(): Promise<Trace> {
    const traces = (await this.onLive({ type: 'profile', action: 'stop', replyId: 0 })).map((m) => m.trace!);
    const first = traces[0]!;
    if (this.list.length === 1) return first;
    return {
      ...first,
      traceEvents: traces.flatMap((t, rank) => t.traceEvents.map((e) => ({ ...e, pid: rank }))),
      metadata: { ...first.metadata, device: traces.map((t) => t.metadata.device).join(',') },
    };
  }

  /** Ends a core's worker as a crash would. */
  async kill(rank: number): Promise<void> {
    const core = this.list[rank];
    if (!Number.isInteger(rank) || core === undefined)
      throw new RangeError(
        `InferenceEngine.killCore: rank must be an integer in [0, ${this.list.length}), got ${rank}`,
      );
    await core.terminate();
  }

  /** The core for a prompt among those serving now, or null when none is (one is loading, or every one is down). */
  pick(prompt: PromptKey): number | null {
    return this.dispatcher.pick(prompt, (rank) => this.list[rank]!.state === 'ready');
  }

  /** Waits for a core to be ready (loading, after start()); rejects when none is loading: stopped, or all dead. */
  async waitFor(prompt: PromptKey): Promise<number> {
    if (this.list.some((c) => c.state === 'starting'))
      await Promise.any(this.list.map((c) => c.ready())).catch(() => undefined);
    const rank = this.pick(prompt);
    if (rank !== null) return rank;
    if (!this.list.some((c) => c.state === 'dead')) return this.list[0]!.ready().then(() => this.waitFor(prompt));
    throw new MiniVllmError(
      `InferenceEngine: every engine core is down (${this.list
        .map((c, rank) => `core ${rank}: ${c.failure?.message ?? c.state}`)
        .join('; ')}); start() brings them back`,
      'ERR_ENGINE_DEAD',
    );
  }
}
