// llama2.c checkpoints: the legacy "version 0" layout (7 int32 header, then float32 tensors layer-stacked) and
// the versioned one (magic "ak42", version 1: 256-byte header, float32). llama2.c rotates adjacent pairs
// (GPT-J style) and ends a story at BOS.
import { MiniVllmError, ModelFormatError } from '../errors.js';
import { type LlamaConfig, validateConfig } from './config.js';
import { BinaryFile, parseFile, spanSource, type TensorSpan } from '../formats/file.js';
import type { WeightSource } from '../formats/file.js';
import { hfName } from './weights.js';

const MAGIC = 0x616b3432; // "ak42"

export interface Llama2cCheckpoint {
  config: LlamaConfig;
  source: WeightSource;
  version: 0 | 1;
}

export function openLlama2c(path: string): Llama2cCheckpoint {
  return parseFile(path, parse);
}

function parse(file: BinaryFile): Llama2cCheckpoint {
  if (file.size < 28)
    throw new ModelFormatError(file.path, `${file.size} bytes is too short for a llama2.c header (28)`);
  const head = file.bytes(0, Math.min(file.size, 256), 'the header');
  let version: 0 | 1 = 0;
  let p: Int32Array;
  let shared: boolean;
  let dataStart: number;
  if (head.readUInt32LE(0) === MAGIC) {
    const v = head.readInt32LE(4);
    if (v === 2)
      throw new MiniVllmError(
        `${file.path}: llama2.c version 2 (int8 Q8_0) checkpoints are not supported yet`,
        'ERR_UNSUPPORTED',
      );
    if (v !== 1) throw new ModelFormatError(file.path, `unknown llama2.c checkpoint version ${v}`);
    if (head.length < 256) throw new ModelFormatError(file.path, 'the version 1 header (256 bytes) is truncated');
    version = 1;
    p = Int32Array.from({ length: 7 }, (_, i) => head.readInt32LE(8 + 4 * i));
    const flag = head.readUInt8(36);
    if (flag > 1) throw new ModelFormatError(file.path, `shared_classifier flag must be 0 or 1, got ${flag}`);
    shared = flag === 1;
    dataStart = 256;
  } else {
    p = Int32Array.from({ length: 7 }, (_, i) => head.readInt32LE(4 * i));
    shared = p[5]! > 0;
    p[5] = Math.abs(p[5]!);
    dataStart = 28;
  }
  const [dim, hidden, layers, heads, kvHeads, vocab, seqLen] = Array.from(p) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
  p.forEach((v, i) => {
    if (!(v > 0) || v > 1 << 24)
      throw new ModelFormatError(file.path, `header field ${names[i]} = ${v} is not a plausible size`);
  });
  if (dim % heads !== 0) throw new ModelFormatError(file.path, `dim ${dim} is not a multiple of n_heads ${heads}`);
  const hd = dim / heads;
  const kvDim = kvHeads * hd;
  const config = validateConfig(
    {
      vocabSize: vocab,
      hiddenSize: dim,
      intermediateSize: hidden,
      numLayers: layers,
      numHeads: heads,
      numKvHeads: kvHeads,
      headDim: hd,
      maxPositionEmbeddings: seqLen,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeStyle: 'gptj',
      tieWordEmbeddings: shared,
      bosTokenId: 1,
      eosTokenIds: vocab > 2 ? [1, 2] : [1],
    },
    file.path,
  );

  // Lay the tensors out twice: first only counting bytes (so an absurd header fails before anything is built),
  // then recording each tensor; layer-stacked [layers, ...shape] tensors get one entry per layer.
  const entries = new Map<string, TensorSpan>();
  const layout = (record: boolean): number => {
    let off = dataStart;
    const put = (name: string | ((l: number) => string), shape: number[], stacked: boolean) => {
      const n = shape.reduce((a, b) => a * b, 1) * 4;
      if (record && stacked)
        for (let l = 0; l < layers; ++l)
          entries.set((name as (l: number) => string)(l), { file, offset: off + l * n, shape, type: 'F32' });
      else if (record) entries.set(name as string, { file, offset: off, shape, type: 'F32' });
      off += n * (stacked ? layers : 1);
    };
    const L = (w: string) => (l: number) => hfName.layer(l, w);
    if (version === 0) {
      put(hfName.embedding, [vocab, dim], false);
      put(L('input_layernorm'), [dim], true);
      put(L('self_attn.q_proj'), [dim, dim], true);
      put(L('self_attn.k_proj'), [kvDim, dim], true);
      put(L('self_attn.v_proj'), [kvDim, dim], true);
      put(L('self_attn.o_proj'), [dim, dim], true);
      put(L('post_attention_layernorm'), [dim], true);
      put(L('mlp.gate_proj'), [hidden, dim], true);
      put(L('mlp.down_proj'), [dim, hidden], true);
      put(L('mlp.up_proj'), [hidden, dim], true);
      put(hfName.norm, [dim], false);
      off += seqLen * hd * 4; // freq_cis_real and freq_cis_imag, [seq_len, head_size / 2] each (unused)
    } else {
      put(L('input_layernorm'), [dim], true);
      put(L('post_attention_layernorm'), [dim], true);
      put(hfName.norm, [dim], false);
      put(hfName.embedding, [vocab, dim], false);
      put(L('self_attn.q_proj'), [dim, dim], true);
      put(L('self_attn.k_proj'), [kvDim, dim], true);
      put(L('self_attn.v_proj'), [kvDim, dim], true);
      put(L('self_attn.o_proj'), [dim, dim], true);
      put(L('mlp.gate_proj'), [hidden, dim], true);
      put(L('mlp.down_proj'), [dim, hidden], true);
      put(L('mlp.up_proj'), [hidden, dim], true);
    }
    if (!shared) put(hfName.lmHead, [vocab, dim], false);
    return off;
  };
  const size = layout(false);
  if (size !== file.size)
    throw new ModelFormatError(
      file.path,
      `the header (dim ${dim}, hidden_dim ${hidden}, n_layers ${layers}, n_heads ${heads}, n_kv_heads ${kvHeads}, ` +
        `vocab ${vocab}, seq_len ${seqLen}) needs ${size} bytes, the file has ${file.size}`,
    );
  layout(true);

  const source = spanSource(file.path, entries, () => file.close());
  return { config, source, version };
}
