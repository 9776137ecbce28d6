// Incremental detokenization for streaming, as vLLM does it: decode a short window of recent ids with and without
// the newest ones and emit the difference, holding text back while it ends in an incomplete UTF-8 sequence.
import type { Tokenizer } from './tokenizer.js';

/** Ids of the prompt the window starts before the first output token (context for spacing rules). */
const PROMPT_CONTEXT = 5;

export class IncrementalDetokenizer {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    promptIds: readonly number[],
    private readonly skipSpecialTokens = true,
  ) {
    this.ids = [...promptIds];
    this.prefixOffset = Math.max(0, this.ids.length - PROMPT_CONTEXT);
    this.readOffset = this.ids.length;
  }

  /** Adds output token ids; resolves to the new text they complete ('' while a character is incomplete). */
  async push(...newIds: number[]): Promise<string> {
    this.ids.push(...newIds);
    const opts = { skipSpecialTokens: this.skipSpecialTokens };
    const [before, after] = await Promise.all([
      this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), opts),
      this.tokenizer.decode(this.ids.slice(this.prefixOffset), opts),
    ]);
    if (after.length <= before.length || after.endsWith('\uFFFD')) return '';
    const delta = after.slice(before.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return delta;
  }

  /** At the end of a sequence: whatever is still held back (an incomplete character becomes U+FFFD). */
  async flush(): Promise<string> {
    if (this.readOffset === this.ids.length) return '';
    const opts = { skipSpecialTokens: this.skipSpecialTokens };
    const before = await this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), opts);
    const after = await this.tokenizer.decode(this.ids.slice(this.prefixOffset), opts);
    const delta = after.startsWith(before) ? after.slice(before.length) : '';
    this.prefixOffset = this.readOffset = this.ids.length;
    return delta;
  }
}
