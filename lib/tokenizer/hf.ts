// tokenizer.json through Hugging Face's `tokenizers` package; special tokens and the chat template from
// tokenizer_config.json.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HfNative } from 'tokenizers';
import { ModelFormatError } from '../errors.js';
import type { GgufFile } from '../formats/gguf.js';
import { renderChatTemplate } from './chat-template.js';
import { ggufBpeTokenizer } from './gguf-bpe.js';
import type { ChatMessage, GrammarVocabulary, Tokenizer } from './tokenizer.js';

function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return null;
}

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly chatTemplate: string | null;
  private readonly bosToken: string;
  private readonly eosToken: string;

  private constructor(
    private readonly tok: HfNative,
    config: Record<string, unknown>,
    modelEos: readonly number[],
    /** The tokenizer.json text, read again only for grammarVocabulary() */
    private readonly json: () => string,
  ) {
    this.vocabSize = tok.getVocabSize(true);
    this.bosToken = tokenText(config['bos_token']) ?? '';
    this.eosToken = tokenText(config['eos_token']) ?? '';
    this.bosTokenId = this.bosToken ? tok.tokenToId(this.bosToken) : null;
    const eos = this.eosToken ? tok.tokenToId(this.eosToken) : null;
    this.eosTokenIds = [...new Set([...(eos === null ? [] : [eos]), ...modelEos])];
    const t = config['chat_template'];
    if (typeof t === 'string') this.chatTemplate = t;
    else if (Array.isArray(t))
      this.chatTemplate =
        (t.find((x: { name?: string }) => x?.name === 'default') as { template?: string } | undefined)?.template ??
        null;
    else this.chatTemplate = null;
  }

  /** tokenizer.json (+ tokenizer_config.json when present) of a Hugging Face model directory. */
  static fromDir(dir: string, model: { eosTokenIds?: readonly number[] } = {}): HfTokenizer {
    return HfTokenizer.fromFile(join(dir, 'tokenizer.json'), model);
  }

  /** A tokenizer.json file, with the tokenizer_config.json beside it when there is one. */
  static fromFile(file: string, model: { eosTokenIds?: readonly number[] } = {}): HfTokenizer {
    let tok: HfNative;
    try {
      tok = HfNative.fromFile(file);
    } catch (e) {
      throw new ModelFormatError(file, `cannot load: ${(e as Error).message}`);
    }
    let config: Record<string, unknown> = {};
    const cfgFile = join(dirname(file), 'tokenizer_config.json');
    let text: string | null = null;
    try {
      text = readFileSync(cfgFile, 'utf8');
    } catch {
      // optional
    }
    if (text !== null) {
      try {
        config = JSON.parse(text) as Record<string, unknown>;
      } catch (e) {
        throw new ModelFormatError(cfgFile, `not valid JSON (${(e as Error).message})`);
      }
    }
    return new HfTokenizer(tok, config, model.eosTokenIds ?? [], () => readFileSync(file, 'utf8'));
  }

  /** A GGUF file's byte-level BPE vocabulary (lib/tokenizer/gguf-bpe.ts). */
  static fromGguf(g: GgufFile, model: { eosTokenIds?: readonly number[] } = {}): HfTokenizer {
    const b = ggufBpeTokenizer(g);
    let tok: HfNative;
    try {
      tok = HfNative.fromString(b.json);
    } catch (e) {
      throw new ModelFormatError(g.path, `cannot build its BPE tokenizer: ${(e as Error).message}`);
    }
    const config = { bos_token: b.bosToken, eos_token: b.eosToken, chat_template: b.chatTemplate };
    return new HfTokenizer(tok, config, model.eosTokenIds ?? [], () => b.json);
  }

  async encode(text: string, opts: { addSpecialTokens?: boolean } = {}): Promise<number[]> {
    if (typeof text !== 'string') throw new TypeError(`encode: text must be a string, got ${typeof text}`);
    const enc = await this.tok.encode(text, null, { addSpecialTokens: opts.addSpecialTokens ?? true });
    return enc.getIds();
  }

  async decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    return this.tok.decode([...ids], opts.skipSpecialTokens ?? true);
  }

  /**
   * Each id's token string as tokenizer.json holds it, '' for special added tokens; byte_level where the decoder is
   * GPT-2's ByteLevel, byte_fallback where it replaces '▁' or falls back to <0xNN> bytes, else raw.
   */
  grammarVocabulary(): GrammarVocabulary {
    const json = JSON.parse(this.json()) as {
      decoder?: { type?: string; decoders?: { type?: string }[] } | null;
      added_tokens?: { id: number; special?: boolean }[];
    };
    const decoders = [json.decoder, ...(json.decoder?.decoders ?? [])].map((d) => d?.type);
    const kind = decoders.includes('ByteLevel')
      ? 'byte_level'
      : decoders.some((t) => t === 'ByteFallback' || t === 'Metaspace' || t === 'Replace')
        ? 'byte_fallback'
        : 'raw';
    const special = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
    const tokens: string[] = [];
    for (let i = 0; i < this.vocabSize; ++i) tokens.push(special.has(i) ? '' : (this.tok.idToToken(i) ?? ''));
    return { tokens, kind };
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    return renderChatTemplate(this.chatTemplate, messages, {
      bosToken: this.bosToken,
      eosToken: this.eosToken,
      addGenerationPrompt: opts.addGenerationPrompt ?? true,
    });
  }
}
