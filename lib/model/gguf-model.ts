// A GGUF file as a model: the config from its `<architecture>.*` metadata (llama, qwen2, qwen3), and its tensors under
// Hugging Face names.
// The file format itself is lib/formats/gguf.ts.
import { MiniVllmError, ModelFormatError } from '../errors.js';
import { type TensorSpan, spanSource, type WeightSource } from '../formats/file.js';
import type { GgufFile } from '../formats/gguf.js';
import { type LlamaConfig, validateConfig } from './config.js';
import { FAMILIES, isArchitecture } from './families.js';
import { hfName } from './weights.js';

const GGUF_NAMES: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^token_embd\.weight$/, () => hfName.embedding],
  [/^output_norm\.weight$/, () => hfName.norm],
  [/^output\.weight$/, () => hfName.lmHead],
  [/^blk\.(\d+)\.attn_norm\.weight$/, (m) => hfName.layer(+m[1]!, 'input_layernorm')],
  [/^blk\.(\d+)\.attn_q\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.q_proj')],
  [/^blk\.(\d+)\.attn_k\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.k_proj')],
  [/^blk\.(\d+)\.attn_v\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.v_proj')],
  [/^blk\.(\d+)\.attn_output\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.o_proj')],
  [/^blk\.(\d+)\.ffn_norm\.weight$/, (m) => hfName.layer(+m[1]!, 'post_attention_layernorm')],
  [/^blk\.(\d+)\.ffn_gate\.weight$/, (m) => hfName.layer(+m[1]!, 'mlp.gate_proj')],
  [/^blk\.(\d+)\.ffn_up\.weight$/, (m) => hfName.layer(+m[1]!, 'mlp.up_proj')],
  [/^blk\.(\d+)\.ffn_down\.weight$/, (m) => hfName.layer(+m[1]!, 'mlp.down_proj')],
  [/^blk\.(\d+)\.attn_q\.bias$/, (m) => hfName.layerBias(+m[1]!, 'self_attn.q_proj')],
  [/^blk\.(\d+)\.attn_k\.bias$/, (m) => hfName.layerBias(+m[1]!, 'self_attn.k_proj')],
  [/^blk\.(\d+)\.attn_v\.bias$/, (m) => hfName.layerBias(+m[1]!, 'self_attn.v_proj')],
  [/^blk\.(\d+)\.attn_q_norm\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.q_norm')],
  [/^blk\.(\d+)\.attn_k_norm\.weight$/, (m) => hfName.layer(+m[1]!, 'self_attn.k_norm')],
];

function metaNumber(g: GgufFile, key: string, fallback?: number): number {
  const v = g.metadata.get(key) ?? fallback;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n))
    throw new ModelFormatError(g.path, `metadata "${key}" is missing or not a number`);
  return n;
}

/** The config and weights of a GGUF file whose architecture is one lib/model/families.ts describes. */
export function ggufModel(g: GgufFile): { config: LlamaConfig; source: WeightSource } {
  const arch = g.metadata.get('general.architecture');
  if (!isArchitecture(arch))
    throw new MiniVllmError(
      `${g.path}: architecture ${JSON.stringify(arch)} is not supported (${Object.keys(FAMILIES).join(', ')})`,
      'ERR_UNSUPPORTED',
    );
  const family = FAMILIES[arch];
  const a = (k: string) => `${arch}.${k}`;
  const hidden = metaNumber(g, a('embedding_length'));
  const heads = metaNumber(g, a('attention.head_count'));
  const tokens = g.metadata.get('tokenizer.ggml.tokens');
  const embd = g.tensors.get('token_embd.weight');
  const vocab = metaNumber(g, a('vocab_size'), Array.isArray(tokens) ? tokens.length : embd?.shape[0]);
  // Qwen3 writes its head size (128 beside a hidden size of 1024 with 16 heads) as attention.key_length
  const headDim = metaNumber(g, a('attention.key_length'), hidden / heads);
  const valueDim = metaNumber(g, a('attention.value_length'), headDim);
  if (valueDim !== headDim)
    throw new MiniVllmError(
      `${g.path}: attention.value_length ${valueDim} differs from key_length ${headDim} (not supported)`,
      'ERR_UNSUPPORTED',
    );
  const ropeDim = metaNumber(g, a('rope.dimension_count'), headDim);
  if (ropeDim !== headDim)
    throw new MiniVllmError(
      `${g.path}: partial rotary (rope.dimension_count ${ropeDim} of ${headDim}) is not supported`,
      'ERR_UNSUPPORTED',
    );
  const hasBias = g.tensors.has('blk.0.attn_q.bias');
  const bos = g.metadata.get('tokenizer.ggml.bos_token_id');
  const eos = g.metadata.get('tokenizer.ggml.eos_token_id');
  const config = validateConfig(
    {
      vocabSize: vocab,
      hiddenSize: hidden,
      intermediateSize: metaNumber(g, a('feed_forward_length')),
      numLayers: metaNumber(g, a('block_count')),
      numHeads: heads,
      numKvHeads: metaNumber(g, a('attention.head_count_kv'), heads),
      headDim,
      maxPositionEmbeddings: metaNumber(g, a('context_length')),
      rmsNormEps: metaNumber(g, a('attention.layer_norm_rms_epsilon'), 1e-5),
      ropeTheta: metaNumber(g, a('rope.freq_base'), 10000),
      // llama.cpp's converter permutes a Llama's q/k rows so that they rotate adjacent pairs; Qwen's keep the halves
      ropeStyle: family.ggufRopeStyle,
      tieWordEmbeddings: !g.tensors.has('output.weight'),
      bosTokenId: typeof bos === 'number' ? bos : null,
      eosTokenIds: typeof eos === 'number' ? [eos] : [],
      architecture: arch,
      attentionBias: family.attentionBias || hasBias,
      qkNorm: family.qkNorm,
    },
    g.path,
  );
  const byHf = new Map<string, TensorSpan>();
  for (const t of g.tensors.values()) {
    for (const [re, to] of GGUF_NAMES) {
      const m = t.name.match(re);
      if (m) byHf.set(to(m), { file: g.file, offset: t.offset, shape: t.shape, type: t.type });
    }
  }
  const source = spanSource(g.path, byHf, () => g.file.close());
  return { config, source };
}
