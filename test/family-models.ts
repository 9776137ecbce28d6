// Tiny seeded models of each family lib/model/families.ts describes, written as GGUF files (llama.cpp's names and
// metadata keys) and as Hugging Face directories with the same weights: the source of test/fixtures/families, whose
// logits come from llama.cpp and from a float64 forward written apart from the engine (README there).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GGUF, type GgufMetaEntry, writeGguf } from '../lib/formats/gguf-writer.js';
import { configToHf, type LlamaConfig, writeSafetensors } from '../lib/model/index.js';
import { permuteHeads } from '../lib/model/quantize-model.js';
import { familyOf, patternLayers } from '../lib/model/families.js';
import { modelTensors } from '../lib/model/tensors.js';
import { hfName } from '../lib/model/weights.js';
import { longRopeAttentionFactor, yarnAttentionFactor } from '../lib/rope.js';
import { syntheticTokenizer } from '../lib/tokenizer/synthetic.js';
import { gpt2Vocabulary } from './bpe-vocab.js';
import { prng, randn } from './helpers.js';
import { writeLlamaTokenizerJson } from './tiny-models.js';

/** LongRoPE over 8 frequencies (a head of 16): short factors near 1, long ones growing to 6 (Phi-3's shape). */
function longRope(original: number, attentionFactor: number) {
  return {
    type: 'longrope' as const,
    shortFactors: Float32Array.from({ length: 8 }, (_, i) => 1 + 0.05 * i),
    longFactors: Float32Array.from({ length: 8 }, (_, i) => 1 + (5 * i * i) / 49),
    originalMaxPositionEmbeddings: original,
    attentionFactor,
  };
}

const base = {
  vocabSize: 320,
  hiddenSize: 64,
  intermediateSize: 128,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  maxPositionEmbeddings: 256,
  rmsNormEps: 1e-6,
  ropeTheta: 1000000,
  ropeScaling: null,
  ropeStyle: 'neox' as const,
  bosTokenId: 1,
  eosTokenIds: [2],
  headDim: 16,
  tieWordEmbeddings: false,
};

/** Each family's tiny model: the traits that make it that family, at shapes a test runs in milliseconds. */
export const FAMILY_CONFIGS = {
  // Qwen2.5's small models tie the classifier to the embedding
  qwen2: {
    ...base,
    tieWordEmbeddings: true,
    architecture: 'qwen2',
    attentionBias: true,
  },
  // Qwen3's head size is its own (4 heads of 32 beside a hidden size of 64, as 16 x 128 beside 1024 in Qwen3-0.6B)
  qwen3: { ...base, headDim: 32, architecture: 'qwen3', qkNorm: true },
  // Llama 3.1's RoPE scaling, its original context shrunk to 16 so that 64 positions reach every band; a GGUF Llama's
  // q/k rows are permuted (adjacent pairs) and its scaling is a rope_freqs tensor
  llama3: {
    ...base,
    architecture: 'llama',
    ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 },
  },
  // YaRN (Qwen2.5's long-context setting) over an original context of 16
  'qwen2-yarn': {
    ...base,
    architecture: 'qwen2',
    attentionBias: true,
    ropeTheta: 10000,
    ropeScaling: {
      type: 'yarn',
      factor: 4,
      originalMaxPositionEmbeddings: 16,
      betaFast: 32,
      betaSlow: 1,
      attentionFactor: yarnAttentionFactor(4),
    },
  },
  // Mistral's sliding window (4096 in Mistral 7B v0.1), 12 keys here so that the 64-token path leaves it
  'mistral-swa': {
    ...base,
    architecture: 'llama',
    ropeTheta: 10000,
    slidingWindow: 12,
  },
  // Phi-3: q/k/v and gate/up fused; Phi-3-mini-4k's sliding window (2047 there, 12 here)
  phi3: {
    ...base,
    architecture: 'phi3',
    ropeTheta: 10000,
    slidingWindow: 12,
  },
  // Phi-4-mini's partial rotary (0.75 of each head there, half here)
  'phi3-partial': {
    ...base,
    rotaryDim: 8,
    architecture: 'phi3',
    ropeTheta: 10000,
    slidingWindow: 4096, // past the path (llama.cpp requires a phi3 file to name one)
  },
  // Phi-3-mini-128k's LongRoPE (its factors for the 4k context below 4096, the long ones from there): here an original
  // context of 512, the path inside it, so every position takes the short factors (as llama.cpp does with a context
  // of 512), and the attention factor from max_position_embeddings 2048
  'phi3-longrope-short': {
    ...base,
    architecture: 'phi3',
    ropeTheta: 10000,
    slidingWindow: 4096,
    maxPositionEmbeddings: 2048,
    ropeScaling: longRope(512, longRopeAttentionFactor(2048, 512)),
  },
  // the long factors: an original context of 1, so every position past the first (whose angle is 0 whatever the
  // factors) takes them, as llama.cpp does with a context of 512 > 1; the attention factor given (1.15)
  'phi3-longrope-long': {
    ...base,
    architecture: 'phi3',
    ropeTheta: 10000,
    slidingWindow: 4096,
    ropeScaling: longRope(1, 1.15),
  },
  // Qwen's use_sliding_window from max_window_layers on: the second layer only (a Hugging Face directory only: a GGUF's
  // window key applies to every layer)
  'qwen2-swa': {
    ...base,
    architecture: 'qwen2',
    attentionBias: true,
    slidingWindow: 10,
    slidingWindowLayers: [1],
  },
  // Gemma 2: GELU-tanh, the sandwich norms with (1 + w), embeddings scaled by sqrt(hidden), a window of 12 on the even
  // layers, soft-capped attention scores and logits (50 and 30 in Gemma 2; 4 and 3 here, near these logits' size, so
  // that the caps change them). 26 layers: llama.cpp runs a gemma2 file of 26, 42 or 46 layers only
  gemma2: {
    ...base,
    numLayers: 26,
    architecture: 'gemma2',
    tieWordEmbeddings: true,
    ropeTheta: 10000,
    slidingWindow: 12,
    slidingWindowLayers: patternLayers(2, 26),
    attnLogitSoftCap: 4,
    finalLogitSoftCap: 3,
  },
  // Gemma 3: q/k norms, five local layers (window 12, RoPE base 10000) to one global (base 1e6, linear scaling 8)
  gemma3: {
    ...base,
    numLayers: 6,
    headDim: 32,
    architecture: 'gemma3',
    qkNorm: true,
    tieWordEmbeddings: true,
    ropeTheta: 1000000,
    ropeScaling: { type: 'linear', factor: 8 },
    slidingRopeTheta: 10000,
    slidingWindow: 12,
    slidingWindowLayers: patternLayers(6, 6),
  },
  // Mixtral: a llama with 4 experts of 64, 2 a token, renormalised (GGUF: a `llama` with expert_count)
  mixtral: {
    ...base,
    architecture: 'llama',
    intermediateSize: 64,
    moe: { numExperts: 4, topK: 2, renormalize: true },
  },
  // OLMoE: q/k norms over the whole projections (no grouped KV heads, as OLMoE-1B-7B: llama.cpp reads k_norm as wide as
  // the hidden size), 8 experts, 3 a token, not renormalised
  olmoe: {
    ...base,
    numKvHeads: 4,
    architecture: 'olmoe',
    qkNorm: true,
    ropeTheta: 10000,
    intermediateSize: 32,
    moe: { numExperts: 8, topK: 3, renormalize: false },
  },
  // Qwen2-MoE (Qwen1.5-MoE-A2.7B: 60 experts of 1408, 4 a token, a shared expert of 5632): Qwen2's biases, 4 experts
  // of 32, 2 a token, not renormalised, and a shared expert of 96 with its sigmoid gate
  qwen2moe: {
    ...base,
    architecture: 'qwen2moe',
    attentionBias: true,
    ropeTheta: 10000,
    intermediateSize: 32,
    moe: { numExperts: 4, topK: 2, renormalize: false, sharedExpertSize: 96 },
  },
  // Qwen3-MoE: Qwen3's layer with 8 experts of 48, 2 a token, renormalised (norm_topk_prob)
  qwen3moe: {
    ...base,
    headDim: 32,
    architecture: 'qwen3moe',
    qkNorm: true,
    intermediateSize: 48,
    moe: { numExperts: 8, topK: 2, renormalize: true },
  },
} satisfies Record<string, LlamaConfig>;
export type FamilyFixture = keyof typeof FAMILY_CONFIGS;

/** The seed of each family's weights. */
export const FAMILY_SEEDS: Record<FamilyFixture, number> = {
  qwen2: 7,
  qwen3: 3003,
  llama3: 31,
  'qwen2-yarn': 44,
  'mistral-swa': 12,
  phi3: 33,
  'phi3-partial': 36,
  'phi3-longrope-short': 37,
  'phi3-longrope-long': 38,
  'qwen2-swa': 10,
  gemma2: 8,
  gemma3: 8,
  mixtral: 5,
  olmoe: 6,
  qwen2moe: 9,
  qwen3moe: 7,
};

/** The fixtures' prompt: 40 seeded ids past the special ones (a longer prompt than any window a later family has). */
export const FAMILY_PROMPT: number[] = (() => {
  const rand = prng(40);
  return [1, ...Array.from({ length: 39 }, () => 3 + Math.floor(rand() * 317))];
})();

/** Greedy tokens each fixture holds after the prompt. */
export const FAMILY_GENERATE = 24;

/** A family's tensors by Hugging Face name: shape and float32 values, seeded. */
export type FamilyWeights = Map<string, { shape: number[]; data: Float32Array }>;

export function familyWeights(c: LlamaConfig, seed: number): FamilyWeights {
  const rand = prng(seed);
  const w: FamilyWeights = new Map();
  const matrix = (name: string, rows: number, cols: number, std = 1 / Math.sqrt(cols)) =>
    w.set(name, { shape: [rows, cols], data: randn(rand, rows * cols, std) });
  const vector = (name: string, n: number, std: number, mean: number) =>
    w.set(name, { shape: [n], data: randn(rand, n, std, mean) });
  const { hiddenSize: d, headDim: hd, intermediateSize: ff } = c;
  // Gemma's files hold w of its (1 + w) norms
  const gemma = familyOf(c).unitOffsetNorms;
  const normMean = gemma ? 0 : 1;
  const [q, kv] = [c.numHeads * hd, c.numKvHeads * hd];
  // a tied classifier reads the embedding: small rows keep the input token from winning every step
  matrix(hfName.embedding, c.vocabSize, d, c.tieWordEmbeddings ? 0.1 : 1);
  for (let i = 0; i < c.numLayers; ++i) {
    const L = (n: string) => hfName.layer(i, n);
    vector(L('input_layernorm'), d, 0.1, normMean);
    const fused = c.architecture === 'phi3';
    if (fused) matrix(L('self_attn.qkv_proj'), q + 2 * kv, d);
    else {
      matrix(L('self_attn.q_proj'), q, d);
      matrix(L('self_attn.k_proj'), kv, d);
      matrix(L('self_attn.v_proj'), kv, d);
    }
    if (c.attentionBias)
      for (const [n, rows] of [
        ['q_proj', q],
        ['k_proj', kv],
        ['v_proj', kv],
      ] as const)
        vector(hfName.layerBias(i, `self_attn.${n}`), rows, 0.1, 0);
    // q/k norms over each head, or over the whole projections (OLMoE)
    const whole = familyOf(c).qkNormOver === 'projection';
    if (c.qkNorm)
      for (const [n, width] of [
        ['q_norm', q],
        ['k_norm', kv],
      ] as const)
        vector(L(`self_attn.${n}`), whole ? width : hd, 0.2, normMean);
    matrix(L('self_attn.o_proj'), d, q, 2 / Math.sqrt(q));
    vector(L('post_attention_layernorm'), d, 0.1, normMean);
    if (gemma) for (const n of ['pre_feedforward_layernorm', 'post_feedforward_layernorm']) vector(L(n), d, 0.1, 0);
    if (c.moe) {
      // the router, then each expert's gate and up, then each expert's down (their names: lib/model/tensors.ts)
      // (and a shared expert's gate/up, down and gate)
      for (const spec of modelTensors(c).filter(
        (s) => /^\d+\.(router|w13|w2|sharedGateUp|sharedDown|sharedGate)$/.test(s.key) && s.key.startsWith(`${i}.`),
      ))
        for (const p of spec.parts)
          matrix(p.hf, p.shape[0]!, p.shape[1]!, /(w2|Down)$/.test(spec.key) ? 2 / Math.sqrt(p.shape[1]!) : undefined);
    } else if (fused) matrix(L('mlp.gate_up_proj'), 2 * ff, d);
    else {
      matrix(L('mlp.gate_proj'), ff, d);
      matrix(L('mlp.up_proj'), ff, d);
    }
    if (!c.moe) matrix(L('mlp.down_proj'), d, ff, 2 / Math.sqrt(ff));
  }
  vector(hfName.norm, d, 0.1, normMean);
  if (!c.tieWordEmbeddings) matrix(hfName.lmHead, c.vocabSize, d, 0.5);
  return w;
}

/** Hugging Face name -> llama.cpp's GGUF name, whether it is a norm, whether it is an expert of a stacked tensor. */
function ggufNames(c: LlamaConfig): Map<string, { gguf: string; norm: boolean; expert: boolean }> {
  return new Map(
    modelTensors(c, false).flatMap((w) =>
      w.parts.map((p) => [p.hf, { gguf: p.gguf, norm: !!p.norm, expert: p.expert !== undefined }]),
    ),
  );
}

function vocabulary(c: LlamaConfig) {
  return syntheticTokenizer(c.vocabSize, { bosTokenId: c.bosTokenId, eosTokenIds: c.eosTokenIds }).vocabulary();
}

/** A byte-level BPE vocabulary for a GGUF file (`tokenizer.ggml.model = gpt2`). */
export interface Gpt2Vocab {
  tokens: string[];
  types: number[];
  merges: string[];
  pre: string;
  bos: number;
  eos: number;
  addBos: boolean;
}

/**
 * Writes the family's model as an F32 GGUF with llama.cpp's metadata keys and a SentencePiece vocabulary, or the given
 * byte-level BPE one.
 */
export function writeFamilyGguf(path: string, c: LlamaConfig, weights: FamilyWeights, bpe?: Gpt2Vocab): void {
  const arch = c.architecture ?? 'llama';
  const v = vocabulary(c);
  const meta: GgufMetaEntry[] = [];
  const set = (key: string, type: number, value: GgufMetaEntry['value'], itemType?: number) =>
    meta.push({ key, type, value, ...(itemType === undefined ? {} : { itemType }) });
  const u = (k: string, n: number) => set(`${arch}.${k}`, GGUF.U32, n);
  set('general.architecture', GGUF.STRING, arch);
  set('general.name', GGUF.STRING, 'tiny seeded model'); // a name holding "phi3" makes llama.cpp look up <|endoftext|>
  u('context_length', c.maxPositionEmbeddings);
  u('embedding_length', c.hiddenSize);
  u('feed_forward_length', c.intermediateSize);
  u('block_count', c.numLayers);
  u('attention.head_count', c.numHeads);
  u('attention.head_count_kv', c.numKvHeads);
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    u('attention.key_length', c.headDim);
    u('attention.value_length', c.headDim);
  }
  set(`${arch}.attention.layer_norm_rms_epsilon`, GGUF.F32, c.rmsNormEps);
  set(`${arch}.rope.freq_base`, GGUF.F32, c.ropeTheta);
  if (c.slidingWindow) u('attention.sliding_window', c.slidingWindow);
  u('rope.dimension_count', c.rotaryDim ?? c.headDim);
  const s = c.ropeScaling ?? null;
  if (c.moe) {
    u('expert_count', c.moe.numExperts);
    u('expert_used_count', c.moe.topK);
    if (arch === 'qwen3moe' || arch === 'qwen2moe') u('expert_feed_forward_length', c.intermediateSize);
    if (c.moe.sharedExpertSize) u('expert_shared_feed_forward_length', c.moe.sharedExpertSize);
  }
  if (c.attnLogitSoftCap) set(`${arch}.attn_logit_softcapping`, GGUF.F32, c.attnLogitSoftCap);
  if (c.finalLogitSoftCap) set(`${arch}.final_logit_softcapping`, GGUF.F32, c.finalLogitSoftCap);
  if (s?.type === 'linear') {
    set(`${arch}.rope.scaling.type`, GGUF.STRING, 'linear');
    set(`${arch}.rope.scaling.factor`, GGUF.F32, s.factor);
  }
  if (s?.type === 'longrope') {
    // llama.cpp's converter: no scaling type, the original context and attention factor, the factors as tensors
    u('rope.scaling.original_context_length', s.originalMaxPositionEmbeddings);
    set(`${arch}.rope.scaling.attn_factor`, GGUF.F32, s.attentionFactor);
  }
  if (s?.type === 'yarn') {
    set(`${arch}.rope.scaling.type`, GGUF.STRING, 'yarn');
    set(`${arch}.rope.scaling.factor`, GGUF.F32, s.factor);
    u('rope.scaling.original_context_length', s.originalMaxPositionEmbeddings);
  }
  set('general.file_type', GGUF.U32, 0);
  if (bpe) {
    set('tokenizer.ggml.model', GGUF.STRING, 'gpt2');
    set('tokenizer.ggml.pre', GGUF.STRING, bpe.pre);
    set('tokenizer.ggml.tokens', GGUF.ARRAY, bpe.tokens, GGUF.STRING);
    set('tokenizer.ggml.token_type', GGUF.ARRAY, bpe.types, GGUF.I32);
    set('tokenizer.ggml.merges', GGUF.ARRAY, bpe.merges, GGUF.STRING);
    set('tokenizer.ggml.bos_token_id', GGUF.U32, bpe.bos);
    set('tokenizer.ggml.eos_token_id', GGUF.U32, bpe.eos);
    set('tokenizer.ggml.add_bos_token', GGUF.BOOL, bpe.addBos);
  } else {
    set('tokenizer.ggml.model', GGUF.STRING, 'llama');
    set('tokenizer.ggml.tokens', GGUF.ARRAY, [...v.pieces], GGUF.STRING);
    set('tokenizer.ggml.scores', GGUF.ARRAY, [...v.scores], GGUF.F32);
    set('tokenizer.ggml.token_type', GGUF.ARRAY, [...v.types], GGUF.I32);
    set('tokenizer.ggml.bos_token_id', GGUF.U32, c.bosTokenId!);
    set('tokenizer.ggml.eos_token_id', GGUF.U32, c.eosTokenIds[0]!);
    set('tokenizer.ggml.unknown_token_id', GGUF.U32, 0);
  }
  const names = ggufNames(c);
  const unit = familyOf(c).unitOffsetNorms;
  // one GGUF tensor per name, in the order they first appear: a MoE's experts of one kind stacked into
  // [numExperts, rows, cols], as llama.cpp's converter writes them
  const out = new Map<string, { shape: number[]; chunks: Float32Array[] }>();
  for (const [name, { shape, data }] of weights) {
    const g = names.get(name);
    if (!g) throw new Error(`no GGUF name for ${name}`);
    // llama.cpp's converter permutes a Llama's q/k rows from Hugging Face's halves to adjacent pairs, and stores
    // Gemma's norms as 1 + w
    const qk = arch === 'llama' && /self_attn\.[qk]_proj\.weight$/.test(name);
    const x = qk ? permuteHeads(data, shape[0]!, shape[1]!, c.headDim) : g.norm && unit ? data.map((v) => v + 1) : data;
    const t = out.get(g.gguf);
    if (t) t.chunks.push(x);
    else out.set(g.gguf, { shape: g.expert ? [c.moe!.numExperts, ...shape] : shape, chunks: [x] });
  }
  const all = [...out].map(([g, { shape, chunks }]) => {
    const joined = new Float32Array(chunks.reduce((n, p) => n + p.length, 0));
    chunks.reduce((o, p) => (joined.set(p, o), o + p.length), 0);
    return [g, shape, joined] as const;
  });
  if (s?.type === 'llama3') {
    // Llama 3.1's scaling as llama.cpp's converter writes it: a divisor per frequency (written here from Hugging Face's
    // formula, in float64)
    const factors = new Float32Array(c.headDim / 2).map((_, i) => {
      const wavelen = 2 * Math.PI * c.ropeTheta ** ((2 * i) / c.headDim);
      const old = s.originalMaxPositionEmbeddings;
      if (wavelen < old / s.highFreqFactor) return 1;
      if (wavelen > old / s.lowFreqFactor) return s.factor;
      const smooth = (old / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      return 1 / ((1 - smooth) / s.factor + smooth);
    });
    all.push(['rope_freqs.weight', [factors.length], factors]);
  }
  if (s?.type === 'longrope')
    all.push(
      ['rope_factors_long.weight', [s.longFactors.length], Float32Array.from(s.longFactors)],
      ['rope_factors_short.weight', [s.shortFactors.length], Float32Array.from(s.shortFactors)],
    );
  const tensors = all.map(([name, shape, data]) => ({
    name,
    shape,
    typeId: 0,
    bytes: data.byteLength,
    data: () => [new Uint8Array(data.buffer, data.byteOffset, data.byteLength)],
  }));
  writeGguf(path, meta, tensors);
}

/** Writes the same model as a Hugging Face directory: config.json, model.safetensors, a tokenizer.json. */
export function writeFamilyHf(dir: string, c: LlamaConfig, weights: FamilyWeights): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configToHf(c), null, 2));
  const v = vocabulary(c);
  writeLlamaTokenizerJson(join(dir, 'tokenizer.json'), [...v.pieces], v.scores);
  writeSafetensors(
    join(dir, 'model.safetensors'),
    [...weights].map(([name, { shape, data }]) => ({ name, shape, dtype: 'F32' as const, data })),
  );
}

/** The tokenizer fixtures: a Qwen2 file with Qwen's split and ChatML specials, a Llama file with Llama 3's and BOS. */
export function bpeVocabularies(): Record<'qwen2' | 'llama-bpe', Gpt2Vocab> {
  const qwen = gpt2Vocabulary(320, ['<|endoftext|>', '<|im_start|>', '<|im_end|>']);
  const llama = gpt2Vocabulary(320, ['<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>']);
  return {
    qwen2: { ...qwen, pre: 'qwen2', bos: 317, eos: 319, addBos: false },
    'llama-bpe': { ...llama, pre: 'llama-bpe', bos: 317, eos: 319, addBos: true },
  };
}

/** Texts the tokenizer fixtures encode: contractions in both cases, digit runs, unicode, whitespace, special tokens. */
export const BPE_TEXTS = [
  'Hello world',
  "The quick brown fox's 1234567 jumps!! I'M, you're, WE'LL",
  'naïve café — 日本語 😀 ©',
  '  leading spaces\n\nnew lines\ttab\r\n  trailing  ',
  '<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n',
  '<|begin_of_text|>def main():\n    return 3.14159',
];
