// One request on the caller's side: its tokens as they arrive from the core, the incremental detokenizer, stop strings,
// the stream of deltas, and the timings the caller sees. Stop strings are found here, in the text, as vLLM's output
// processor finds them; `onStopString` tells the owner, before the last delta goes out, so it can abort the sequence
// in the core (which does not see text).
import type { ResolvedSamplingParams } from '../sampling/params.js';
import type { TokenLogprobs } from '../sampling/sampler.js';
import { IncrementalDetokenizer } from '../tokenizer/detokenizer.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { RequestOutput } from './engine-core.js';
import type { FinishReason } from './sequence.js';

export interface RequestTimings {
  /** performance.now() milliseconds on the caller's thread: arrival (the call), first token, every token, finish. */
  arrival: number;
  firstToken: number;
  tokens: number[];
  /** The last token's arrival (vLLM's end of a request), or the abort. */
  finish: number;
}

export interface GenerationResult {
  requestId: string;
  promptTokenIds: number[];
  text: string;
  /** Every generated id, the end token or stop id that ended the output included. */
  tokenIds: number[];
  finishReason: FinishReason;
  /** The stop string or stop token id that ended the output, if one did. */
  stopReason: string | number | null;
  logprobs: TokenLogprobs[] | null;
  /** Prompt tokens whose K/V came from the prefix cache. */
  numCachedTokens: number;
  timings: RequestTimings;
}

/** New output of a streamed request. The texts of all deltas concatenate to the final text. */
export interface StreamDelta {
  requestId: string;
  /** New text: never half a character, never text that could still turn out to be part of a stop string. */
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprobs[] | null;
  /** Set on the last delta. */
  finishReason: FinishReason | null;
  stopReason: string | number | null;
}

export class RequestState {
  readonly requestId: string;
  readonly promptTokenIds: number[];
  readonly params: ResolvedSamplingParams;
  readonly timings: RequestTimings;
  readonly tokenIds: number[] = [];
  readonly logprobs: TokenLogprobs[] | null;
  text = '';
  finishReason: FinishReason | null = null;
  stopReason: string | number | null = null;
  numCachedTokens = 0;
  private readonly detok: IncrementalDetokenizer;
  private readonly maxStop: number;
  private emitted = 0;
  // Outputs are handled one after another (decoding is async); each waits for the previous.
  private chain: Promise<void> = Promise.resolve();

  /**
   * `onDelta` gets every delta; `onStopString` is called once if a stop string ends the request, before the delta
   * that reports it.
   */
  constructor(
    requestId: string,
    promptTokenIds: number[],
    params: ResolvedSamplingParams,
    tokenizer: Tokenizer,
    arrival: number,
    private readonly onDelta: (d: StreamDelta) => void,
    private readonly onStopString: () => void = () => {},
  ) {
    this.requestId = requestId;
    this.promptTokenIds = promptTokenIds;
    this.params = params;
    this.timings = { arrival, firstToken: 0, tokens: [], finish: 0 };
    this.detok = new IncrementalDetokenizer(tokenizer, promptTokenIds, params.skipSpecialTokens);
    this.maxStop = Math.max(0, ...params.stop.map((s) => s.length));
    this.logprobs = params.logprobs === null ? null : [];
  }

  get finished(): boolean {
    return this.finishReason !== null;
  }

  /** Queues work after what is already queued for this request (outputs are decoded one after another). */
  enqueue(work: () => unknown): Promise<void> {
    this.chain = this.chain.then(async () => {
      await work();
    });
    return this.chain;
  }

  /** Takes one token from the core (received at `now`). */
  async take(out: RequestOutput, now: number): Promise<void> {
    if (this.finished) return; // tokens the core made before it heard of the stop string or abort
    this.tokenIds.push(out.token);
    this.timings.tokens.push(now);
    if (this.tokenIds.length === 1) this.timings.firstToken = now;
    if (this.logprobs && out.logprobs) this.logprobs.push(out.logprobs);
    this.numCachedTokens = out.numCachedTokens;
    let stopString = false;
    if (out.finishReason === 'stop') {
      // an end token or stop id: in the ids, not in the text
      this.finishReason = 'stop';
      this.stopReason = out.stopReason;
    } else {
      const delta = await this.detok.push(out.token);
      this.text += delta;
      stopString = this.findStop(delta.length);
      if (!stopString && out.finishReason !== null) this.finishReason = out.finishReason;
    }
    if (this.finished && !stopString) this.text += await this.detok.flush();
    if (stopString) this.onStopString();
    this.emit([out.token], out.logprobs ? [out.logprobs] : [], now);
  }

  /** Ends the request as the caller asked: the text so far, nothing more. */
  abort(): void {
    if (this.finished) return;
    this.finishReason = 'abort';
    this.emit([], [], performance.now());
  }

  result(): GenerationResult {
    return {
      requestId: this.requestId,
      promptTokenIds: this.promptTokenIds,
      text: this.text,
      tokenIds: this.tokenIds,
      finishReason: this.finishReason!,
      stopReason: this.stopReason,
      logprobs: this.logprobs,
      numCachedTokens: this.numCachedTokens,
      timings: this.timings,
    };
  }

  /** Cuts the text at the first stop string that the newest `deltaLength` characters complete. */
  private findStop(deltaLength: number): boolean {
    if (this.maxStop === 0 || deltaLength === 0) return false;
    const from = Math.max(0, this.text.length - deltaLength - this.maxStop + 1);
    let cut = -1;
    for (const stop of this.params.stop) {
      const at = this.text.indexOf(stop, from);
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
        this.stopReason = stop;
      }
    }
    if (cut < 0) return false;
    this.text = this.text.slice(0, cut);
    this.finishReason = 'stop';
    return true;
  }

  /** `at`: when the request finished, if this delta finishes it (the final token's arrival, as vLLM times E2E). */
  private emit(tokenIds: number[], logprobs: TokenLogprobs[], at: number): void {
    if (this.finished) this.timings.finish = at;
    // Hold back what could still become the start of a stop string.
    const safe = this.finished
      ? this.text.length
      : Math.max(this.emitted, this.text.length - Math.max(0, this.maxStop - 1));
    const text = this.text.slice(this.emitted, safe);
    this.emitted = Math.max(this.emitted, safe);
    this.onDelta({
      requestId: this.requestId,
      text,
      tokenIds,
      logprobs: this.logprobs ? logprobs : null,
      finishReason: this.finishReason,
      stopReason: this.stopReason,
    });
  }
}
