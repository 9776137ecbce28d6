// A request inside the engine core: its tokens, where their K/V live (the block table), how many are computed,
// and its sampling state. Only engine/ knows about sequences.
import type { ResolvedSamplingParams } from '../sampling/params.js';
import { SamplingState } from '../sampling/sampler.js';

export type SequenceStatus = 'waiting' | 'running' | 'finished';

/** Why a sequence ended: an end token or stop id ('stop'), its length budget ('length'), or the caller ('abort'). */
export type FinishReason = 'stop' | 'length' | 'abort';

export class Sequence {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  readonly state: SamplingState;
  status: SequenceStatus = 'waiting';
  /** Cache blocks holding this sequence's K/V, in order: token i lives in blockTable[i / blockSize]. */
  blockTable: number[] = [];
  /** Hash of each full block of the sequence's tokens, filled as blocks fill (prefix caching). */
  readonly blockHashes: number[] = [];
  /** Tokens whose K/V are in the cache (computed by a step or found in the prefix cache). */
  numComputedTokens = 0;
  /** Prompt tokens the prefix cache supplied when the sequence was first scheduled. */
  numCachedTokens = 0;
  /** Leading blocks of the table already in the prefix cache (hit, or registered once full). */
  numCachedBlocks = 0;
  numPreemptions = 0;
  finishReason: FinishReason | null = null;
  /** The stop token id that ended it, if one did. */
  stopReason: number | null = null;

  constructor(requestId: string, promptTokenIds: readonly number[], params: ResolvedSamplingParams, vocabSize: number) {
    this.requestId = requestId;
    this.promptTokenIds = promptTokenIds;
    this.state = new SamplingState(params, promptTokenIds, vocabSize);
  }

  get params(): ResolvedSamplingParams {
    return this.state.params;
  }

  get outputTokenIds(): readonly number[] {
    return this.state.outputTokenIds;
  }

  /** Prompt and output tokens so far. */
  get numTokens(): number {
    return this.promptTokenIds.length + this.state.outputTokenIds.length;
  }

  tokenAt(i: number): number {
    const p = this.promptTokenIds.length;
    return i < p ? this.promptTokenIds[i]! : this.state.outputTokenIds[i - p]!;
  }

  /** Tokens [start, end) of prompt + output. */
  tokens(start: number, end: number): number[] {
    const out: number[] = [];
    for (let i = start; i < end; ++i) out.push(this.tokenAt(i));
    return out;
  }

  get isFinished(): boolean {
    return this.status === 'finished';
  }
}
