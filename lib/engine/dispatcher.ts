// Data parallelism's front: which engine core a request goes to. Each core is a whole engine (model, KV cache,
// scheduler) on its own device or share of the CPU threads; the dispatcher keeps, per core, the tokens it still owes
// (prompt tokens to compute and output tokens to generate) and the prompt prefixes it was sent, and sends a request
// where it would finish soonest: the fewest outstanding tokens, counting a prefix the core already holds as free.
import { hashBlock } from './block-manager.js';

/** What the dispatcher knows of one core. */
export interface CoreLoad {
  rank: number;
  /** Requests sent to it and not finished. */
  requests: number;
  /** Prompt tokens still to compute (as sent, before any prefix hit) plus output tokens still to generate. */
  outstandingTokens: number;
}

interface Assigned {
  rank: number;
  /** What it still owes. */
  tokens: number;
  /** Its prompt's tokens, owed until the first output token comes. */
  promptTokens: number;
  started: boolean;
}

/** A prompt as the dispatcher sees it: its length and its full blocks' chained hashes, computed once per request. */
export interface PromptKey {
  tokens: number;
  hashes: number[];
}

/** Prefix blocks remembered per core: enough for a few thousand prompts; the oldest go first. */
const PREFIX_ENTRIES = 1 << 16;

/** The chained hashes of a prompt's full blocks, as the engine's prefix cache keys them (hashBlock). */
export function prefixBlockHashes(ids: readonly number[], blockSize: number): number[] {
  const out: number[] = [];
  let parent = 0;
  for (let i = 0; i + blockSize <= ids.length; i += blockSize)
    out.push((parent = hashBlock(parent, ids.slice(i, i + blockSize))));
  return out;
}

export class Dispatcher {
  private readonly load: CoreLoad[];
  private readonly prefixes: Map<number, true>[];
  private readonly assigned = new Map<string, Assigned>();

  constructor(
    size: number,
    private readonly blockSize: number,
  ) {
    this.load = Array.from({ length: size }, (_, rank) => ({ rank, requests: 0, outstandingTokens: 0 }));
    this.prefixes = Array.from({ length: size }, () => new Map<number, true>());
  }

  /** Every core's load, by rank. */
  loads(): CoreLoad[] {
    return this.load.map((l) => ({ ...l }));
  }

  /**
   * The core for a prompt among those that can take it (`alive`), or null when none can. The cost of core c is its
   * outstanding tokens plus the prompt tokens it would compute (those past the longest prefix it was sent before);
   * ties go to the fewer outstanding tokens, then the lower rank.
   */
  pick({ tokens, hashes }: PromptKey, alive: (rank: number) => boolean): number | null {
    let best: number | null = null;
    let bestCost = Infinity;
    for (const l of this.load) {
      if (!alive(l.rank)) continue;
      const seen = this.prefixes[l.rank]!;
      let hit = 0;
      while (hit < hashes.length && seen.has(hashes[hit]!)) ++hit;
      const cost = l.outstandingTokens + tokens - hit * this.blockSize;
      if (
        cost < bestCost ||
        (cost === bestCost && best !== null && l.outstandingTokens < this.load[best]!.outstandingTokens)
      ) {
        best = l.rank;
        bestCost = cost;
      }
    }
    return best;
  }

  /** A prompt's key for pick() and assign(). */
  key(ids: readonly number[]): PromptKey {
    return { tokens: ids.length, hashes: prefixBlockHashes(ids, this.blockSize) };
  }

  /** Records that `requestId` went to `rank` and may cost its prompt + `maxTokens`; remembers its prefix there. */
  assign(requestId: string, rank: number, prompt: PromptKey, maxTokens: number): void {
    const tokens = prompt.tokens + maxTokens;
    this.assigned.set(requestId, { rank, tokens, promptTokens: prompt.tokens, started: false });
    const l = this.load[rank]!;
    ++l.requests;
    l.outstandingTokens += tokens;
    const seen = this.prefixes[rank]!;
    for (const h of prompt.hashes) {
      seen.delete(h); // re-inserted: the newest last
      seen.set(h, true);
    }
    for (const h of seen.keys()) {
      if (seen.size <= PREFIX_ENTRIES) break;
      seen.delete(h);
    }
  }

  /** A token came for the request: its prompt is computed (the first token) and one fewer token is owed. */
  progress(requestId: string): void {
    const a = this.assigned.get(requestId);
    if (!a) return;
    const done = Math.min(a.tokens, 1 + (a.started ? 0 : a.promptTokens));
    a.started = true;
    a.tokens -= done;
    this.load[a.rank]!.outstandingTokens -= done;
  }

  /** The request ended (finished, aborted or failed): what it still owed comes off its core. */
  release(requestId: string): void {
    const a = this.assigned.get(requestId);
    if (!a) return;
    this.assigned.delete(requestId);
    const l = this.load[a.rank]!;
    --l.requests;
    l.outstandingTokens -= a.tokens;
  }

  /** Requests in flight on `rank`. */
  requestsOn(rank: number): number {
    return this.load[rank]!.requests;
  }

  /** A core died: nothing it was sent is cached there any more. */
  forget(rank: number): void {
    this.prefixes[rank]!.clear();
  }
}
