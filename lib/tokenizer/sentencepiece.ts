// SentencePiece-style BPE by merge scores, for llama2.c tok*.bin files and GGUF `llama` vocabularies: text is split
// into code points (bytes <0xNN> where a code point has no piece), then the adjacent pair whose merged piece has the
// highest score is merged until none is left, as llama2.c's run.c does. Decoding drops the leading space of the
// first piece (the "dummy prefix"), as run.c does after BOS.
import { ModelFormatError } from '../errors.js';
import { BinaryFile } from '../formats/file.js';
import type { GgufFile } from '../formats/gguf.js';
import { renderChatTemplate } from './chat-template.js';
import type { ChatMessage, GrammarVocabulary, Tokenizer } from './tokenizer.js';

/** GGUF token types. */
export const TokenType = { Normal: 1, Unknown: 2, Control: 3, UserDefined: 4, Unused: 5, Byte: 6 } as const;

export interface SentencePieceVocab {
  /** Piece text, spaces as ' ' (not U+2581). */
  pieces: string[];
  scores: Float32Array;
  /** Per-piece TokenType; inferred when absent (byte pieces `<0xNN>`, BOS/EOS/UNK control). */
  types?: Int32Array;
  bosTokenId: number | null;
  eosTokenIds: number[];
  unkTokenId: number | null;
  addBos?: boolean;
  addSpacePrefix?: boolean;
  chatTemplate?: string | null;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

interface Candidate {
  score: number;
  left: number;
  right: number;
  leftLen: number;
  rightLen: number;
}

/** A binary max-heap of merge candidates: highest score first, then the leftmost. */
class MergeHeap {
  private items: Candidate[] = [];
  get size(): number {
    return this.items.length;
  }
  private before(a: Candidate, b: Candidate): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  push(c: Candidate): void {
    const h = this.items;
    h.push(c);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): Candidate {
    const h = this.items;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1,
          r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

export class SentencePieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly unkTokenId: number | null;
  readonly chatTemplate: string | null;
  readonly addBos: boolean;
  readonly addSpacePrefix: boolean;
  private readonly pieces: string[];
  private readonly scores: Float32Array;
  private readonly types: Int32Array;
  private readonly bytesOf: Uint8Array[];
  private readonly ids = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);

  constructor(v: SentencePieceVocab) {
    this.pieces = v.pieces;
    this.scores = v.scores;
    this.vocabSize = v.pieces.length;
    this.bosTokenId = v.bosTokenId;
    this.eosTokenIds = v.eosTokenIds;
    this.unkTokenId = v.unkTokenId;
    this.addBos = v.addBos ?? true;
    this.addSpacePrefix = v.addSpacePrefix ?? true;
    this.chatTemplate = v.chatTemplate ?? null;
    const special = new Set([v.bosTokenId, v.unkTokenId, ...v.eosTokenIds]);
    this.types =
      v.types ??
      Int32Array.from(v.pieces, (p, i) =>
        special.has(i) ? TokenType.Control : BYTE_PIECE.test(p) ? TokenType.Byte : TokenType.Normal,
      );
    this.bytesOf = new Array<Uint8Array>(this.vocabSize);
    for (let i = 0; i < this.vocabSize; ++i) {
      const p = v.pieces[i]!;
      const type = this.types[i]!;
      const m = type === TokenType.Byte || type === TokenType.Normal ? BYTE_PIECE.exec(p) : null;
      if (m) {
        const b = parseInt(m[1]!, 16);
        if (this.byteIds[b] === -1) this.byteIds[b] = i;
        this.bytesOf[i] = Uint8Array.of(b);
      } else {
        this.bytesOf[i] =
          type === TokenType.Control || type === TokenType.Unknown || type === TokenType.Unused
            ? new Uint8Array(0)
            : utf8.encode(p);
      }
      // Control pieces never match text; the first of duplicate pieces wins.
      if (type !== TokenType.Control && type !== TokenType.Unused && !this.ids.has(p)) this.ids.set(p, i);
    }
  }

  /** A llama2.c tokenizer file: int32 max_token_length, then per token {float32 score, int32 len, len bytes}. */
  static fromLlama2c(path: string, vocabSize?: number): SentencePieceTokenizer {
    const f = new BinaryFile(path);
    try {
      const pieces: string[] = [];
      const scores: number[] = [];
      let off = 4;
      const maxLen = f.bytes(0, 4, 'max_token_length').readInt32LE(0);
      if (maxLen <= 0 || maxLen > 1 << 16)
        throw new ModelFormatError(path, `max_token_length ${maxLen} is not plausible`);
      const dec = new TextDecoder('utf-8');
      while (vocabSize === undefined ? off < f.size : pieces.length < vocabSize) {
        const head = f.bytes(off, 8, `the header of token ${pieces.length}`);
        const score = head.readFloatLE(0);
        const len = head.readInt32LE(4);
        if (len < 0 || len > maxLen)
          throw new ModelFormatError(path, `token ${pieces.length} has length ${len} (max_token_length ${maxLen})`);
        if (!Number.isFinite(score)) throw new ModelFormatError(path, `token ${pieces.length} has score ${score}`);
        pieces.push(dec.decode(f.bytes(off + 8, len, `token ${pieces.length}`)));
        scores.push(score);
        off += 8 + len;
      }
      if (vocabSize !== undefined && off !== f.size)
        throw new ModelFormatError(
          path,
          `holds more than the model's ${vocabSize} tokens (${f.size - off} bytes left over): the wrong tokenizer ` +
            `for this model?`,
        );
      if (pieces.length < 3)
        throw new ModelFormatError(
          path,
          `holds ${pieces.length} tokens; a llama2.c vocabulary has <unk>, <s>, </s> first`,
        );
      // llama2.c: 0 <unk>, 1 BOS, 2 EOS; a story ends at BOS as well.
      return new SentencePieceTokenizer({
        pieces,
        scores: Float32Array.from(scores),
        bosTokenId: 1,
        eosTokenIds: [1, 2],
        unkTokenId: 0,
      });
    } finally {
      f.close();
    }
  }

  /** The `llama` (SentencePiece) vocabulary embedded in a GGUF file. */
  static fromGguf(g: GgufFile): SentencePieceTokenizer {
    const model = g.metadata.get('tokenizer.ggml.model');
    if (model !== 'llama')
      throw new ModelFormatError(
        g.path,
        `tokenizer.ggml.model ${JSON.stringify(model)} is not supported (llama, gpt2); pass --tokenizer`,
      );
    const tokens = g.metadata.get('tokenizer.ggml.tokens');
    if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string'))
      throw new ModelFormatError(g.path, 'tokenizer.ggml.tokens is missing or not a list of strings');
    const n = tokens.length;
    const scores = g.metadata.get('tokenizer.ggml.scores');
    const types = g.metadata.get('tokenizer.ggml.token_type');
    if (scores !== undefined && (!Array.isArray(scores) || scores.length !== n))
      throw new ModelFormatError(g.path, `tokenizer.ggml.scores must hold ${n} numbers`);
    if (types !== undefined && (!Array.isArray(types) || types.length !== n))
      throw new ModelFormatError(g.path, `tokenizer.ggml.token_type must hold ${n} integers`);
    const id = (key: string): number | null => {
      const v = g.metadata.get(key);
      if (v === undefined) return null;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= n)
        throw new ModelFormatError(g.path, `${key} = ${String(v)} is not a token id`);
      return v;
    };
    const eos = id('tokenizer.ggml.eos_token_id');
    const template = g.metadata.get('tokenizer.chat_template');
    return new SentencePieceTokenizer({
      pieces: tokens.map((t) => t.replaceAll('\u2581', ' ')),
      scores: scores ? Float32Array.from(scores as number[]) : new Float32Array(n),
      ...(types ? { types: Int32Array.from(types as number[]) } : {}),
      bosTokenId: id('tokenizer.ggml.bos_token_id'),
      eosTokenIds: eos === null ? [] : [eos],
      unkTokenId: id('tokenizer.ggml.unknown_token_id'),
      addBos: g.metadata.get('tokenizer.ggml.add_bos_token') !== false,
      addSpacePrefix: g.metadata.get('tokenizer.ggml.add_space_prefix') !== false,
      chatTemplate: typeof template === 'string' ? template : null,
    });
  }

  /** Every piece (spaces as ' ') and its merge score. */
  vocabulary(): { pieces: readonly string[]; scores: Float32Array; types: Int32Array } {
    return { pieces: this.pieces, scores: this.scores, types: this.types };
  }

  grammarVocabulary(): GrammarVocabulary {
    const text = (t: number) => t === TokenType.Normal || t === TokenType.Byte || t === TokenType.UserDefined;
    return {
      tokens: this.pieces.map((p, i) => (text(this.types[i]!) ? p.replaceAll(' ', '\u2581') : '')),
      kind: 'byte_fallback',
    };
  }

  /** The piece text of a token id (spaces as ' '). */
  piece(id: number): string {
    const p = this.pieces[id];
    if (p === undefined) throw new RangeError(`piece: token id ${id} is outside [0, ${this.vocabSize})`);
    return p;
  }

  encodeSync(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`encode: text must be a string, got ${typeof text}`);
    const out: number[] = [];
    if ((opts.addSpecialTokens ?? true) && this.addBos && this.bosTokenId !== null) out.push(this.bosTokenId);
    if (text.length === 0) return out;
    const src = this.addSpacePrefix ? ` ${text}` : text;
    // Symbols: one per code point (or per byte, by byte fallback), linked so merges are O(1).
    const sym: number[] = [];
    for (const ch of src) {
      const id = this.ids.get(ch);
      if (id !== undefined) sym.push(id);
      else for (const b of utf8.encode(ch)) sym.push(this.byteIds[b]! >= 0 ? this.byteIds[b]! : (this.unkTokenId ?? 0));
    }
    const n = sym.length;
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const len = new Int32Array(n).fill(1); // piece length in symbols, for spotting stale candidates
    const alive = new Uint8Array(n).fill(1);
    const heap = new MergeHeap();
    const consider = (l: number) => {
      const r = next[l]!;
      if (l < 0 || r < 0) return;
      const id = this.ids.get(this.pieces[sym[l]!]! + this.pieces[sym[r]!]!);
      if (id !== undefined)
        heap.push({ score: this.scores[id]!, left: l, right: r, leftLen: len[l]!, rightLen: len[r]! });
    };
    for (let i = 0; i + 1 < n; ++i) consider(i);
    while (heap.size > 0) {
      const c = heap.pop();
      const { left: l, right: r } = c;
      if (!alive[l] || !alive[r] || next[l] !== r || len[l] !== c.leftLen || len[r] !== c.rightLen) continue;
      sym[l] = this.ids.get(this.pieces[sym[l]!]! + this.pieces[sym[r]!]!)!;
      len[l] = len[l] + len[r];
      alive[r] = 0;
      next[l] = next[r]!;
      if (next[r]! >= 0) prev[next[r]!] = l;
      consider(prev[l]!);
      consider(l);
    }
    for (let i = 0; i >= 0 && i < n; i = next[i]!) out.push(sym[i]!);
    return out;
  }

  decodeSync(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    const skip = opts.skipSpecialTokens ?? true;
    const parts: Uint8Array[] = [];
    let first = true;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new RangeError(`decode: token id ${id} is outside [0, ${this.vocabSize})`);
      const type = this.types[id]!;
      if (type === TokenType.Control || type === TokenType.Unknown || type === TokenType.Unused) {
        if (!skip) parts.push(utf8.encode(this.pieces[id]));
        continue;
      }
      let b = this.bytesOf[id]!;
      if (first && this.addSpacePrefix && type !== TokenType.Byte && b[0] === 0x20) b = b.subarray(1);
      first = false;
      parts.push(b);
    }
    return Buffer.concat(parts).toString('utf8');
  }

  encode(text: string, opts?: { addSpecialTokens?: boolean }): Promise<number[]> {
    return Promise.resolve(this.encodeSync(text, opts));
  }

  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): Promise<string> {
    return Promise.resolve(this.decodeSync(ids, opts));
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    const name = (id: number | null | undefined) => (id === null || id === undefined ? '' : this.pieces[id]!);
    return renderChatTemplate(this.chatTemplate, messages, {
      bosToken: name(this.bosTokenId),
      eosToken: name(this.eosTokenIds[0]),
      addGenerationPrompt: opts.addGenerationPrompt ?? true,
    });
  }
}
