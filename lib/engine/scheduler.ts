// The scheduler: which sequences run in the next step and how many of their tokens. Continuous batching with one
// token budget shared by prefills and decodes (vLLM v1's shape): running sequences first, oldest first, then
// waiting ones in arrival order. A prompt longer than the budget is prefilled in chunks. When the cache runs out of
// blocks the newest running sequence is preempted: its blocks are freed and it is recomputed later. Pure TypeScript.
import { BlockManager } from './block-manager.js';
import type { FinishReason, Sequence } from './sequence.js';

export interface SchedulerConfig {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  maxModelLen: number;
  enableChunkedPrefill: boolean;
}

export interface ScheduledSequence {
  seq: Sequence;
  /** Tokens [start, start + numTokens) of the sequence run in this step. */
  start: number;
  numTokens: number;
  /** The step ends at the sequence's last token, so its logits are sampled. */
  sample: boolean;
}

export interface SchedulerOutput {
  scheduled: ScheduledSequence[];
  numBatchedTokens: number;
  /** Sequences preempted while scheduling this step (their blocks are already free). */
  preempted: Sequence[];
}

/** What a step produced for one sequence that sampled. */
export interface SequenceUpdate {
  seq: Sequence;
  token: number;
  finishReason: FinishReason | null;
  stopReason: number | null;
}

export class Scheduler {
  readonly config: SchedulerConfig;
  readonly blockManager: BlockManager;
  readonly waiting: Sequence[] = [];
  readonly running: Sequence[] = [];
  /** Preemptions so far. */
  numPreemptions = 0;
  private readonly eos: ReadonlySet<number>;
  private readonly byId = new Map<string, Sequence>();

  constructor(config: SchedulerConfig, blockManager: BlockManager, eosTokenIds: Iterable<number>) {
    this.config = config;
    this.blockManager = blockManager;
    this.eos = new Set(eosTokenIds);
  }

  get hasUnfinished(): boolean {
    return this.byId.size > 0;
  }

  /** Every unfinished sequence. */
  sequences(): IterableIterator<Sequence> {
    return this.byId.values();
  }

  add(seq: Sequence): void {
    if (this.byId.has(seq.requestId))
      throw new RangeError(`Scheduler: request id ${JSON.stringify(seq.requestId)} is already in use`);
    if (seq.numTokens >= this.config.maxModelLen)
      throw new RangeError(
        `Scheduler: the prompt has ${seq.numTokens} tokens; maxModelLen is ${this.config.maxModelLen}`,
      );
    this.byId.set(seq.requestId, seq);
    seq.status = 'waiting';
    this.waiting.push(seq);
  }

  /** Ends a sequence now ('abort') and frees its blocks; returns it, or undefined if it is not here (finished). */
  abort(requestId: string): Sequence | undefined {
    const seq = this.byId.get(requestId);
    if (!seq) return undefined;
    this.finish(seq, 'abort');
    return seq;
  }

  schedule(): SchedulerOutput {
    const { maxNumSeqs, enableChunkedPrefill } = this.config;
    const bm = this.blockManager;
    let budget = this.config.maxNumBatchedTokens;
    const scheduled: ScheduledSequence[] = [];
    const preempted: Sequence[] = [];
    const take = (seq: Sequence, n: number) => {
      scheduled.push({
        seq,
        start: seq.numComputedTokens,
        numTokens: n,
        sample: seq.numComputedTokens + n === seq.numTokens,
      });
      budget -= n;
    };

    // Running sequences (decodes, and prefills part way through), oldest first; the newest give way when blocks run
    // out.
    for (let i = 0; i < this.running.length && budget > 0; ++i) {
      const seq = this.running[i]!;
      const n = Math.min(seq.numTokens - seq.numComputedTokens, budget);
      let fits = true;
      while (!bm.allocate(seq, n)) {
        const victim = this.running.pop()!;
        this.preempt(victim);
        preempted.push(victim);
        if (victim === seq) {
          fits = false;
          break;
        }
      }
      if (fits) take(seq, n);
    }

    // Waiting sequences in arrival order (preempted ones at the front), unless this step already had to preempt.
    while (preempted.length === 0 && this.waiting.length > 0 && this.running.length < maxNumSeqs && budget > 0) {
      const seq = this.waiting[0]!;
      const cached = bm.findCachedPrefix(seq);
      let n = seq.numTokens - cached.length * bm.blockSize;
      if (n > budget) {
        if (!enableChunkedPrefill) break;
        n = budget;
      }
      if (!bm.allocate(seq, n, cached)) break;
      this.waiting.shift();
      seq.status = 'running';
      this.running.push(seq);
      take(seq, n);
    }
    return { scheduled, numBatchedTokens: this.config.maxNumBatchedTokens - budget, preempted };
  }

  /**
   * Applies a step: the scheduled tokens are computed, and `tokens[k]` is the token sampled for the k-th scheduled
   * sequence with `sample` set. Finishes sequences that reach an end token, a stop id or their length budget, and
   * frees their blocks. Returns one update per sampled token.
   */
  update(out: SchedulerOutput, tokens: ArrayLike<number>): SequenceUpdate[] {
    const updates: SequenceUpdate[] = [];
    let k = 0;
    for (const { seq, numTokens, sample } of out.scheduled) {
      const token = sample ? tokens[k++]! : -1;
      if (seq.isFinished) continue; // aborted between schedule() and update()
      seq.numComputedTokens += numTokens;
      this.blockManager.cacheFullBlocks(seq);
      if (!sample) continue;
      const followed = seq.state.append(token);
      const p = seq.params;
      let reason: FinishReason | null = null;
      if (!p.ignoreEos && this.eos.has(token)) reason = 'stop';
      else if (p.stopTokenIds.includes(token)) {
        reason = 'stop';
        seq.stopReason = token;
      } else if (!followed || seq.state.matcher?.terminated) {
        // the grammar ended (it took an end token under ignoreEos) or refused the token (other filters left it
        // nothing the grammar allows)
        reason = 'stop';
      } else if (seq.outputTokenIds.length >= p.maxTokens || seq.numTokens >= this.config.maxModelLen)
        reason = 'length';
      if (reason !== null) this.finish(seq, reason);
      updates.push({ seq, token, finishReason: reason, stopReason: seq.stopReason });
    }
    return updates;
  }

  private preempt(seq: Sequence): void {
    this.blockManager.free(seq);
    seq.numComputedTokens = 0;
    seq.status = 'waiting';
    ++seq.numPreemptions;
    ++this.numPreemptions;
    this.waiting.unshift(seq);
  }

  private finish(seq: Sequence, reason: FinishReason): void {
    const queue = seq.status === 'running' ? this.running : this.waiting;
    const at = queue.indexOf(seq);
    if (at >= 0) queue.splice(at, 1);
    this.blockManager.free(seq);
    seq.status = 'finished';
    seq.finishReason = reason;
    seq.state.dispose();
    this.byId.delete(seq.requestId);
  }
}
