// Writes small Hugging Face-format Llamas for tests: config.json, safetensors (single or sharded), a Llama-style
// tokenizer.json built with Hugging Face's `tokenizers` from a SentencePiece vocabulary, tokenizer_config.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tokenizers from 'tokenizers';
import { readFloats, type StorageType } from '../lib/formats/file.js';
import { openGguf } from '../lib/formats/gguf.js';
import { configToHf, type LlamaConfig, writeSafetensors } from '../lib/model/index.js';
import { encodeFloats } from '../lib/formats/safetensors.js';
import { quantizeModel } from '../lib/model/quantize-model.js';
import { roundBFloat16 } from '../lib/reference/index.js';
import type { ReferenceWeights } from '../lib/reference/index.js';
import { syntheticTokenizer } from '../lib/tokenizer/synthetic.js';
import { prng, uniform } from './helpers.js';

const {
  Tokenizer,
  BPE,
  sequenceNormalizer,
  prependNormalizer,
  replace,
  sequenceDecoder,
  replaceDecoder,
  byteFallbackDecoder,
  fuseDecoder,
  stripDecoder,
  templateProcessing,
} = tokenizers;

export const TINY_CONFIG: LlamaConfig = {
  vocabSize: 512,
  hiddenSize: 64,
  intermediateSize: 96,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  maxPositionEmbeddings: 128,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  ropeStyle: 'neox',
  tieWordEmbeddings: false,
  bosTokenId: 1,
  eosTokenIds: [2],
};

/**
 * A Llama-style tokenizer.json (BPE with byte fallback, "▁" for spaces, BOS prepended) from a SentencePiece
 * vocabulary: pieces with ' ' for spaces, ids 0-2 <unk> <s> </s>. Merges are every split of a piece into two
 * pieces, ranked by the merged piece's score, as Hugging Face converts SentencePiece BPE models.
 */
export function writeLlamaTokenizerJson(path: string, pieces: string[], scores: Float32Array): void {
  const vocab: Record<string, number> = {};
  const names = pieces.map((p, i) =>
    i === 0 ? '<unk>' : i === 1 ? '<s>' : i === 2 ? '</s>' : p.replaceAll(' ', '\u2581'),
  );
  names.forEach((p, i) => {
    if (!(p in vocab)) vocab[p] = i;
  });
  const merges: [string, string, number, number][] = [];
  names.forEach((p, id) => {
    if (id < 3 || /^<0x[0-9A-F]{2}>$/.test(p)) return;
    const chars = [...p];
    for (let i = 1; i < chars.length; ++i) {
      const a = chars.slice(0, i).join(''),
        b = chars.slice(i).join('');
      if (a in vocab && b in vocab) merges.push([a, b, scores[id]!, id]);
    }
  });
  merges.sort((x, y) => y[2] - x[2] || x[3] - y[3] || vocab[x[0]]! - vocab[y[0]]!);
  const t = new Tokenizer(
    BPE.init(
      vocab,
      merges.map(([a, b]) => [a, b]),
      { byteFallback: true, unkToken: '<unk>', fuseUnk: true },
    ),
  );
  t.setNormalizer(sequenceNormalizer([prependNormalizer('\u2581'), replace(' ', '\u2581')]));
  t.setDecoder(
    sequenceDecoder([replaceDecoder('\u2581', ' '), byteFallbackDecoder(), fuseDecoder(), stripDecoder(' ', 1, 0)]),
  );
  t.setPostProcessor(templateProcessing('<s> $A', null, [['<s>', 1]]));
  t.addSpecialTokens(['<unk>', '<s>', '</s>']);
  t.save(path);
}

/**
 * The quantised-model tests' tiny Llama: rows of 256 values so that every K type applies, GQA, 3 layers so the Q4_K_M
 * mix has both kinds of layer (test/quant-model.test.ts, bench/scripts/quant-fuzz.mjs).
 */
export const QUANT_TINY_CONFIG: LlamaConfig = {
  ...TINY_CONFIG,
  vocabSize: 320,
  hiddenSize: 256,
  intermediateSize: 512,
  numLayers: 3,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 64,
};

export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% " +
  "else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}";

export interface TinyModelOptions {
  config?: LlamaConfig;
  seed?: number;
  /** Split the weights over this many safetensors files with an index (default 1: model.safetensors). */
  shards?: number;
  dtype?: 'F32' | 'BF16';
  pieces: string[];
  scores: Float32Array;
}

/** Writes the model directory; returns the weights as stored (bf16-rounded where stored so), for the reference. */
export function writeTinyHfModel(dir: string, opts: TinyModelOptions): ReferenceWeights {
  const c = opts.config ?? TINY_CONFIG;
  const rand = prng(opts.seed ?? 1);
  const weights: ReferenceWeights = new Map();
  const d = c.hiddenSize,
    q = c.numHeads * c.headDim,
    kv = c.numKvHeads * c.headDim,
    ff = c.intermediateSize;
  const add = (name: string, shape: number[], bound: number, mean = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    let data = uniform(rand, n, bound).map((v) => v + mean);
    if (opts.dtype === 'BF16') data = data.map(roundBFloat16);
    weights.set(name, data);
  };
  add('model.embed_tokens.weight', [c.vocabSize, d], 1);
  for (let l = 0; l < c.numLayers; ++l) {
    const L = (w: string) => `model.layers.${l}.${w}.weight`;
    add(L('input_layernorm'), [d], 0.2, 1);
    add(L('self_attn.q_proj'), [q, d], 0.2);
    add(L('self_attn.k_proj'), [kv, d], 0.2);
    add(L('self_attn.v_proj'), [kv, d], 0.2);
    add(L('self_attn.o_proj'), [d, q], 0.2);
    add(L('post_attention_layernorm'), [d], 0.2, 1);
    add(L('mlp.gate_proj'), [ff, d], 0.2);
    add(L('mlp.up_proj'), [ff, d], 0.2);
    add(L('mlp.down_proj'), [d, ff], 0.2);
  }
  add('model.norm.weight', [d], 0.2, 1);
  if (!c.tieWordEmbeddings) add('lm_head.weight', [c.vocabSize, d], 0.2);

  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configToHf(c), null, 2));
  const shapeOf = (name: string): number[] => {
    if (name.endsWith('layernorm.weight') || name === 'model.norm.weight') return [d];
    if (name.includes('embed_tokens') || name.includes('lm_head')) return [c.vocabSize, d];
    if (name.includes('q_proj')) return [q, d];
    if (name.includes('k_proj') || name.includes('v_proj')) return [kv, d];
    if (name.includes('o_proj')) return [d, q];
    if (name.includes('down_proj')) return [d, ff];
    return [ff, d];
  };
  const entries = [...weights].map(([name, data]) => ({
    name,
    shape: shapeOf(name),
    data,
    dtype: opts.dtype ?? ('F32' as const),
  }));
  const shards = opts.shards ?? 1;
  if (shards === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), entries);
  } else {
    const map: Record<string, string> = {};
    for (let s = 0; s < shards; ++s) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = entries.filter((_, i) => i % shards === s);
      part.forEach((e) => {
        map[e.name] = file;
      });
      writeSafetensors(join(dir, file), part);
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }));
  }
  writeLlamaTokenizerJson(join(dir, 'tokenizer.json'), opts.pieces, opts.scores);
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      bos_token: '<s>',
      eos_token: { content: '</s>' },
      add_bos_token: true,
      chat_template: CHAT_TEMPLATE,
    }),
  );
  return weights;
}

/**
 * Rewrites a GGUF file with every tensor stored as `type` (F32, F16 or BF16): the metadata bytes are copied as they
 * are (plus `extraStrings` as string entries); tensor infos and data are written anew (alignment 32).
 */
export function rewriteGguf(
  from: string,
  to: string,
  type: 'F32' | 'F16' | 'BF16',
  extraStrings: Record<string, string> = {},
): void {
  const g = openGguf(from);
  try {
    const typeId = { F32: 0, F16: 1, BF16: 30 }[type];
    const head = Buffer.alloc(24);
    head.write('GGUF', 0, 'latin1');
    head.writeUInt32LE(3, 4);
    head.writeBigUInt64LE(BigInt(g.tensors.size), 8);
    const extra = Object.entries(extraStrings).map(([k, v]) => {
      const key = Buffer.from(k),
        val = Buffer.from(v);
      const b = Buffer.alloc(8 + key.length + 4 + 8 + val.length);
      let p = b.writeBigUInt64LE(BigInt(key.length), 0);
      p += key.copy(b, p);
      p = b.writeUInt32LE(8, p); // string
      p = b.writeBigUInt64LE(BigInt(val.length), p);
      val.copy(b, p);
      return b;
    });
    head.writeBigUInt64LE(BigInt(g.metadata.size + extra.length), 16);
    const kv = Buffer.concat([g.file.bytes(24, g.tensorInfoStart - 24, 'metadata'), ...extra]);
    const infos: Buffer[] = [];
    const blobs: Buffer[] = [];
    let off = 0;
    for (const t of g.tensors.values()) {
      const numel = t.shape.reduce((a, b) => a * b, 1);
      const name = Buffer.from(t.name);
      const info = Buffer.alloc(8 + name.length + 4 + 8 * t.shape.length + 4 + 8);
      let p = info.writeBigUInt64LE(BigInt(name.length), 0);
      p += name.copy(info, p);
      p = info.writeUInt32LE(t.shape.length, p);
      for (const d of [...t.shape].reverse()) p = info.writeBigUInt64LE(BigInt(d), p);
      p = info.writeUInt32LE(typeId, p);
      info.writeBigUInt64LE(BigInt(off), p);
      infos.push(info);
      const data = readFloats(g.file, t.offset, numel, t.type as StorageType, t.name);
      const blob = encodeFloats(data, type);
      const padded = Buffer.alloc(Math.ceil(blob.length / 32) * 32);
      blob.copy(padded);
      blobs.push(padded);
      off += padded.length;
    }
    const header = Buffer.concat([head, kv, ...infos]);
    writeFileSync(
      to,
      Buffer.concat([header, Buffer.alloc(Math.ceil(header.length / 32) * 32 - header.length), ...blobs]),
    );
  } finally {
    g.file.close();
  }
}

/**
 * The model behind the llama.cpp fixtures (test/fixtures/llama-cpp): one layer with rows of 256 values, so every K
 * type applies, GQA, and a 320-token vocabulary so that llama.cpp loads it.
 */
export const LLAMA_CPP_TINY_CONFIG: LlamaConfig = {
  ...TINY_CONFIG,
  vocabSize: 320,
  hiddenSize: 256,
  intermediateSize: 256,
  numLayers: 1,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 64,
};

/**
 * Writes the llama.cpp fixtures' source: the seeded tiny model as an F32 GGUF with a SentencePiece vocabulary (written
 * through a llama2.c tokenizer file, which quantizeModel embeds), in `dir`. Returns the GGUF's path.
 */
export function writeLlamaCppSource(dir: string): string {
  const c = LLAMA_CPP_TINY_CONFIG;
  const tok = syntheticTokenizer(c.vocabSize, { bosTokenId: 1, eosTokenIds: [2] }).vocabulary();
  writeTinyHfModel(join(dir, 'hf'), { config: c, seed: 41, pieces: [...tok.pieces], scores: tok.scores });
  // llama2.c's tokenizer layout: int32 max_token_length, then per token {float32 score, int32 length, bytes}
  const pieces = tok.pieces.map((p, i) => Buffer.from(i === 1 ? '\n<s>\n' : i === 2 ? '\n</s>\n' : p));
  const parts = [Buffer.alloc(4)];
  parts[0]!.writeInt32LE(Math.max(...pieces.map((p) => p.length)), 0);
  pieces.forEach((p, i) => {
    const head = Buffer.alloc(8);
    head.writeFloatLE(tok.scores[i]!, 0);
    head.writeInt32LE(p.length, 4);
    parts.push(head, p);
  });
  writeFileSync(join(dir, 'tok320.bin'), Buffer.concat(parts));
  const out = join(dir, 'tiny-F32.gguf');
  quantizeModel(join(dir, 'hf'), out, 'f32', { tokenizer: join(dir, 'tok320.bin') });
  return out;
}
