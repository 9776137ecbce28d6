// A second mask beside the grammar's: only tokens that keep the output valid UTF-8. xgrammar decodes UTF-8 leniently
// (an overlong form, a surrogate, a code point past U+10FFFF count as one character), where a decoder, Node's
// included, turns each such sequence into several U+FFFD: a string the grammar held to maxLength 2 could come out
// 4 characters long. A random-weight model emits such byte tokens; a trained one rarely. The states are the UTF-8
// decoder's (which continuation bytes the next byte may be); each token's bytes move a state to another or are refused.
import type { GrammarVocabulary } from '../tokenizer/tokenizer.js';

/** [continuation bytes still needed, the lowest and highest the next one may be]; state 0 is "between characters". */
const STATES: readonly [number, number, number][] = [
  [0, 0, 0],
  [1, 0x80, 0xbf],
  [2, 0xa0, 0xbf], // after E0: no overlong 3-byte form
  [2, 0x80, 0x9f], // after ED: no surrogate
  [2, 0x80, 0xbf],
  [3, 0x90, 0xbf], // after F0: no overlong 4-byte form
  [3, 0x80, 0x8f], // after F4: nothing past U+10FFFF
  [3, 0x80, 0xbf],
];

/** The state after byte b in state s, or -1 where b cannot come next. */
function step(s: number, b: number): number {
  const [need, lo, hi] = STATES[s]!;
  if (need > 0) return b >= lo && b <= hi ? (need === 1 ? 0 : need === 2 ? 1 : 4) : -1;
  if (b < 0x80) return 0;
  if (b >= 0xc2 && b <= 0xdf) return 1;
  if (b === 0xe0) return 2;
  if (b === 0xed) return 3;
  if (b >= 0xe1 && b <= 0xef) return 4;
  if (b === 0xf0) return 5;
  if (b === 0xf4) return 6;
  if (b >= 0xf1 && b <= 0xf3) return 7;
  return -1; // 80-BF alone, C0, C1, F5-FF: never in UTF-8
}

/** GPT-2's byte alphabet backwards: each printable stand-in character to its byte. */
function byteLevelDecoder(): Map<number, number> {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<number, number>();
  let next = 256;
  for (let b = 0; b < 256; ++b) map.set(keep(b) ? b : next++, b);
  return map;
}

const utf8 = new TextEncoder();
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** The bytes each token adds to the text, or null for a special token (''). */
function tokenBytes(vocab: GrammarVocabulary): (Uint8Array | null)[] {
  const decoder = vocab.kind === 'byte_level' ? byteLevelDecoder() : null;
  return vocab.tokens.map((t) => {
    if (t === '') return null;
    if (vocab.kind === 'byte_fallback') {
      const m = BYTE_PIECE.exec(t);
      return m ? Uint8Array.of(parseInt(m[1]!, 16)) : utf8.encode(t.replaceAll('\u2581', ' '));
    }
    if (decoder) {
      const out: number[] = [];
      for (const ch of t) {
        const b = decoder.get(ch.codePointAt(0)!);
        if (b !== undefined) out.push(b);
        else out.push(...utf8.encode(ch));
      }
      return Uint8Array.from(out);
    }
    return utf8.encode(t);
  });
}

export class Utf8Guard {
  /** Per state, the tokens that may come next (a bitmask over the vocabulary). */
  private readonly masks: Int32Array[];
  /** Per state, each token's next state (-1: refused). */
  private readonly next: Int8Array[];

  constructor(vocab: GrammarVocabulary, vocabSize: number) {
    const bytes = tokenBytes(vocab);
    const words = Math.ceil(vocabSize / 32);
    this.masks = STATES.map(() => new Int32Array(words));
    this.next = STATES.map(() => new Int8Array(vocabSize).fill(-1));
    for (let s = 0; s < STATES.length; ++s) {
      const mask = this.masks[s]!;
      const next = this.next[s]!;
      for (let t = 0; t < vocabSize; ++t) {
        const b = bytes[t] ?? null;
        let to = s;
        if (b) for (let i = 0; i < b.length && to >= 0; ++i) to = step(to, b[i]!);
        // special tokens (and ids past the tokenizer's) are the grammar's business: they pass here
        if (to < 0) continue;
        next[t] = to;
        mask[t >> 5]! |= 1 << (t & 31);
      }
    }
  }

  /** ANDs the tokens that may follow `state` into `dst[offset, offset + words)`. */
  restrict(state: number, dst: Int32Array, offset: number): void {
    const mask = this.masks[state]!;
    for (let w = 0; w < mask.length; ++w) dst[offset + w]! &= mask[w]!;
  }

  /** The state after `token` (a token the mask allowed). */
  after(state: number, token: number): number {
    return Math.max(0, this.next[state]![token] ?? 0);
  }
}
