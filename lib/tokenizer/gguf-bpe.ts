// A GGUF file's byte-level BPE vocabulary (`tokenizer.ggml.model = gpt2`: Llama 3's, Qwen's) as the tokenizer.json
// Hugging Face's `tokenizers` reads: the vocabulary and merges as the file holds them, the pre-tokenizer that
// `tokenizer.ggml.pre` names (the split patterns of the models' own tokenizer.json files), byte-level decoding, BOS
// prepended where the file asks. Control and user-defined tokens are added tokens, matched before BPE.
import type { GgufFile } from '../formats/gguf.js';
import { MiniVllmError, ModelFormatError } from '../errors.js';

// The two differ in digits: Llama 3 splits runs of up to three, Qwen single digits.
const CONTRACTIONS = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
const REST = '| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const LLAMA3 = CONTRACTIONS + '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}' + REST;
const QWEN2 = CONTRACTIONS + '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}' + REST;

/** `tokenizer.ggml.pre` -> the split pattern before byte-level BPE (null: GPT-2's, built into the ByteLevel step). */
const PRE: Record<string, string | null> = {
  'llama-bpe': LLAMA3,
  llama3: LLAMA3,
  'llama-v3': LLAMA3,
  'smaug-bpe': LLAMA3,
  dbrx: LLAMA3,
  falcon3: LLAMA3,
  qwen2: QWEN2,
  'deepseek-r1-qwen': QWEN2,
  stablelm2: QWEN2,
  default: null,
  'gpt-2': null,
  'phi-2': null,
  'roberta-bpe': null,
};

/** llama.cpp's token types. */
const CONTROL = 3;
const USER_DEFINED = 4;

/** What the loader needs besides the tokenizer.json: special ids, BOS use, the chat template. */
export interface GgufBpe {
  json: string;
  bosTokenId: number | null;
  eosTokenIds: number[];
  bosToken: string;
  eosToken: string;
  addBos: boolean;
  chatTemplate: string | null;
}

/** The tokenizer.json of a GGUF file whose vocabulary is byte-level BPE. */
export function ggufBpeTokenizer(g: GgufFile): GgufBpe {
  const bad = (what: string) => new ModelFormatError(g.path, what);
  const tokens = g.metadata.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string'))
    throw bad('tokenizer.ggml.tokens is missing or not a list of strings');
  const merges = g.metadata.get('tokenizer.ggml.merges');
  if (!Array.isArray(merges) || !merges.every((m) => typeof m === 'string' && m.includes(' ')))
    throw bad('tokenizer.ggml.merges is missing or not a list of "left right" strings (byte-level BPE needs them)');
  const types = g.metadata.get('tokenizer.ggml.token_type');
  if (types !== undefined && (!Array.isArray(types) || types.length !== tokens.length))
    throw bad(`tokenizer.ggml.token_type must hold ${tokens.length} integers`);
  const preName = g.metadata.get('tokenizer.ggml.pre') ?? 'default';
  if (typeof preName !== 'string' || !Object.hasOwn(PRE, preName))
    throw new MiniVllmError(
      `${g.path}: tokenizer.ggml.pre ${JSON.stringify(preName)} is not supported (${Object.keys(PRE).join(', ')}); ` +
        'pass the model’s tokenizer.json with --tokenizer',
      'ERR_UNSUPPORTED',
    );
  const id = (key: string): number | null => {
    const v = g.metadata.get(key);
    if (v === undefined) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= tokens.length)
      throw bad(`${key} = ${String(v)} is not a token id`);
    return v;
  };
  const vocab: Record<string, number> = {};
  const added: object[] = [];
  tokens.forEach((t, i) => {
    vocab[t] = i;
    const type = types ? (types as number[])[i] : 1;
    if (type === CONTROL || type === USER_DEFINED)
      added.push({
        id: i,
        content: t,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: type === CONTROL,
      });
  });
  const bos = id('tokenizer.ggml.bos_token_id');
  const eos = id('tokenizer.ggml.eos_token_id');
  const addBos = bos !== null && g.metadata.get('tokenizer.ggml.add_bos_token') === true;
  const pattern = PRE[preName]!;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: pattern === null };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer:
      pattern === null
        ? byteLevel
        : {
            type: 'Sequence',
            pretokenizers: [
              { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
              byteLevel,
            ],
          },
    post_processor: addBos
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: tokens[bos]!, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: tokens[bos]!, type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [tokens[bos]!]: { id: tokens[bos]!, ids: [bos], tokens: [tokens[bos]!] } },
        }
      : null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  const template = g.metadata.get('tokenizer.chat_template');
  return {
    json: JSON.stringify(json),
    bosTokenId: bos,
    eosTokenIds: eos === null ? [] : [eos],
    bosToken: bos === null ? '' : tokens[bos]!,
    eosToken: eos === null ? '' : tokens[eos]!,
    addBos,
    chatTemplate: typeof template === 'string' ? template : null,
  };
}
