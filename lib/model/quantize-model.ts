// `mini-vllm quantize`: any model the loader reads -> a quantised GGUF that llama.cpp and our loader read. Q8_0 and
// Q4_0 as llama.cpp's files of those types (Q4_0's output head in Q6_K); Q4_K_M and Q5_K_M with llama.cpp's mix of
// per-tensor types (attn_v and ffn_down in Q6_K on the layers use_more_bits picks, the output head in Q6_K, Q4_K or
// Q5_K elsewhere; a row length that is not a multiple of 256 falls back to Q5_0 / Q5_1 / Q8_0, as llama.cpp does).
// F32 writes every tensor unquantised (a quantised file's dequantised values).
import type { WeightSource } from '../formats/file.js';
import { openGguf } from '../formats/gguf.js';
import { GEMMA3_LOCAL_ROPE_THETA, ggufAttentionScale, ggufModel } from './gguf-model.js';
import { modelFormat, openModel } from './open.js';
import { hfName } from './weights.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import { dequantizeRows, QUANT_FORMATS, type QuantType, quantRowBytes } from '../quant/formats.js';
import { GGUF, GGUF_ALIGNMENT, type GgufMetaEntry, type GgufTensorOut, writeGguf } from '../formats/gguf-writer.js';
import { quantizeRows } from '../quant/quantize.js';
import { MiniVllmError } from '../errors.js';
import { ropeInvFreq, yarnAttentionFactor } from '../rope.js';
import type { LlamaConfig } from './config.js';
import { type Architecture, FAMILIES, patternLayers } from './families.js';
import { modelTensors, type TensorPart } from './tensors.js';

/** What `quantize` writes: the three llama.cpp types people pick most, Q5_K_M, and F32 (a quantised file undone). */
export type QuantizeTarget = 'q8_0' | 'q4_0' | 'q4_k_m' | 'q5_k_m' | 'f32';
export const QUANTIZE_TARGETS: readonly QuantizeTarget[] = ['q8_0', 'q4_0', 'q4_k_m', 'q5_k_m', 'f32'];

/** llama.cpp's general.file_type of each target (LLAMA_FTYPE_MOSTLY_*). */
const FILE_TYPE: Record<QuantizeTarget, number> = { q8_0: 7, q4_0: 2, q4_k_m: 15, q5_k_m: 17, f32: 0 };

/** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between. */
export function useMoreBits(i: number, n: number): boolean {
  return i < n / 8 || i >= (7 * n) / 8 || (i - Math.floor(n / 8)) % 3 === 2;
}

/** The type llama.cpp gives tensor `name` (GGUF naming) of a `target` file; null keeps it F32. */
export function targetType(
  target: QuantizeTarget,
  name: string,
  cols: number,
  layers: number,
  tied: boolean,
): QuantType | null {
  // llama.cpp keeps norms, a MoE's router (ffn_gate_inp) and Qwen2-MoE's shared-expert gate (a vector there) in F32
  if (target === 'f32' || !name.endsWith('.weight') || /(norm|ffn_gate_inp|ffn_gate_inp_shexp)\.weight$/.test(name))
    return null;
  const head = name === 'output.weight' || (tied && name === 'token_embd.weight');
  const layer = /^blk\.(\d+)\./.exec(name);
  let t: QuantType;
  if (target === 'q8_0') t = 'Q8_0';
  else if (head) t = 'Q6_K';
  else if (target === 'q4_0') t = 'Q4_0';
  else if (layer && /\.(attn_v|ffn_down|ffn_down_exps)\.weight$/.test(name) && useMoreBits(+layer[1]!, layers))
    t = 'Q6_K';
  else t = target === 'q4_k_m' ? 'Q4_K' : 'Q5_K';
  // llama.cpp's fallbacks for rows that are not whole super-blocks
  if (cols % QUANT_FORMATS[t].block !== 0) t = t === 'Q4_K' ? 'Q5_0' : t === 'Q5_K' ? 'Q5_1' : 'Q8_0';
  return cols % QUANT_FORMATS[t].block === 0 ? t : null;
}

/**
 * Gemma's soft-caps as GGUF metadata; its attention scale and Gemma 3's local RoPE base are llama.cpp's own (not in
 * the file), so a config with others has no GGUF form.
 */
function ggufGemmaMeta(c: LlamaConfig, arch: Architecture): [string, number][] {
  if (arch !== 'gemma2' && arch !== 'gemma3') {
    if (c.attentionScale !== undefined || c.attnLogitSoftCap || c.finalLogitSoftCap || c.slidingRopeTheta)
      throw new MiniVllmError(`quantize: a ${arch} model's Gemma settings have no GGUF form`, 'ERR_UNSUPPORTED');
    return [];
  }
  const given = c.attentionScale ?? 1 / Math.sqrt(c.headDim);
  const derived = ggufAttentionScale(arch, c.numLayers, c.hiddenSize / c.numHeads) ?? 1 / Math.sqrt(c.headDim);
  if (Math.abs(given - derived) > 1e-6 * derived)
    throw new MiniVllmError(
      `quantize: attention scale ${given} has no ${arch} GGUF form (llama.cpp uses ${derived} for this shape)`,
      'ERR_UNSUPPORTED',
    );
  if (arch === 'gemma3') {
    if ((c.slidingRopeTheta ?? c.ropeTheta) !== GEMMA3_LOCAL_ROPE_THETA || c.attnLogitSoftCap || c.finalLogitSoftCap)
      throw new MiniVllmError(
        `quantize: a gemma3 GGUF has a local RoPE base of ${GEMMA3_LOCAL_ROPE_THETA} and no soft-caps`,
        'ERR_UNSUPPORTED',
      );
    return [];
  }
  // llama.cpp caps every Gemma 2: an uncapped one has no GGUF form
  if (!c.attnLogitSoftCap || !c.finalLogitSoftCap)
    throw new MiniVllmError('quantize: a gemma2 GGUF always soft-caps (llama.cpp)', 'ERR_UNSUPPORTED');
  return [
    ['attn_logit_softcapping', c.attnLogitSoftCap],
    ['final_logit_softcapping', c.finalLogitSoftCap],
  ];
}

/**
 * A config's RoPE scaling as GGUF holds it: Llama 3.1's (or a GGUF's rope_freqs) as the per-frequency divisors
 * llama.cpp reads from a rope_freqs tensor; linear and YaRN as `<arch>.rope.scaling.*` metadata; LongRoPE as
 * rope_factors_long / rope_factors_short tensors with its original context and attention factor (llama.cpp's).
 */
function ggufRope(config: LlamaConfig): {
  meta: [string, number, number | string][];
  tensors: [string, Float32Array][];
} {
  const s = config.ropeScaling ?? null;
  if (s === null) return { meta: [], tensors: [] };
  if (s.type === 'linear')
    return {
      meta: [
        ['rope.scaling.type', GGUF.STRING, 'linear'],
        ['rope.scaling.factor', GGUF.F32, s.factor],
      ],
      tensors: [],
    };
  if (s.type === 'yarn') {
    if (s.betaFast !== 32 || s.betaSlow !== 1)
      throw new MiniVllmError(
        `quantize: YaRN with beta_fast ${s.betaFast} / beta_slow ${s.betaSlow} has no GGUF form (llama.cpp: 32, 1)`,
        'ERR_UNSUPPORTED',
      );
    return {
      meta: [
        ['rope.scaling.type', GGUF.STRING, 'yarn'],
        ['rope.scaling.factor', GGUF.F32, s.factor],
        ['rope.scaling.original_context_length', GGUF.U32, s.originalMaxPositionEmbeddings],
        ['rope.scaling.attn_factor', GGUF.F32, s.attentionFactor / yarnAttentionFactor(s.factor)],
      ],
      tensors: [],
    };
  }
  if (s.type === 'freqFactors') return { meta: [], tensors: [['rope_freqs.weight', s.factors]] };
  if (s.type === 'longrope')
    return {
      meta: [
        ['rope.scaling.original_context_length', GGUF.U32, s.originalMaxPositionEmbeddings],
        ['rope.scaling.attn_factor', GGUF.F32, s.attentionFactor],
      ],
      tensors: [
        ['rope_factors_long.weight', s.longFactors],
        ['rope_factors_short.weight', s.shortFactors],
      ],
    };
  const rot = config.rotaryDim ?? config.headDim;
  const plain = ropeInvFreq(rot, config.ropeTheta);
  const scaled = ropeInvFreq(rot, config.ropeTheta, s);
  return { meta: [], tensors: [['rope_freqs.weight', plain.map((f, i) => f / scaled[i]!)]] };
}

/** Rows of a source tensor as float32, dequantising a quantised file's. */
function readRows(src: WeightSource, name: string, row: number, rows: number, cols: number): Float32Array {
  const q = src.quantType?.(name);
  if (!q) return src.read(name, row, rows);
  return dequantizeRows(q, src.readRaw!(name, row, rows), 0, quantRowBytes(q, cols), rows, cols);
}

/** Hugging Face's rotate-half q/k rows -> GGUF's adjacent pairs (what llama.cpp's converter permutes). */
export function permuteHeads(x: Float32Array, rows: number, cols: number, headDim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; ++r) {
    const h = Math.floor(r / headDim);
    const i = r % headDim;
    const to = h * headDim + (i < headDim / 2 ? 2 * i : 2 * (i - headDim / 2) + 1);
    out.set(x.subarray(r * cols, (r + 1) * cols), to * cols);
  }
  return out;
}

export interface QuantizeOptions {
  tokenizer?: string;
  seed?: number;
  onTensor?: (name: string, type: string, index: number, total: number) => void;
}

/** Writes `model` as a `target` GGUF at `out`; returns the tensors' types, and whether the vocabulary was embedded. */
export function quantizeModel(
  model: string,
  out: string,
  target: QuantizeTarget,
  opts: QuantizeOptions = {},
): { types: Record<string, string>; vocabulary: boolean } {
  // A GGUF's metadata is copied as it is (its vocabulary with it): its tokenizer is not needed, nor opened.
  const gguf = modelFormat(model) === 'gguf' ? openGguf(model) : null;
  const opened = gguf ? { ...ggufModel(gguf), tokenizer: null } : openModel(model, opts, 'quantize');
  const { config, source, tokenizer } = opened;
  try {
    const tied = config.tieWordEmbeddings || !source.has(hfName.lmHead);
    const arch = config.architecture ?? 'llama';
    // Llama's GGUF q/k rows rotate adjacent pairs (llama.cpp's converter permutes Hugging Face's halves); Qwen's keep
    // the halves
    const family = FAMILIES[arch];
    if (family.ggufRopeStyle === 'neox' && config.ropeStyle === 'gptj')
      throw new MiniVllmError(`quantize: a ${arch} model with GPT-J RoPE has no GGUF form`, 'ERR_UNSUPPORTED');
    const permuteQk = family.ggufRopeStyle === 'gptj' && config.ropeStyle === 'neox';
    const rope = ggufRope(config);
    const meta: GgufMetaEntry[] = [];
    const set = (key: string, type: number, value: GgufMetaEntry['value'], itemType?: number) =>
      meta.push(itemType === undefined ? { key, type, value } : { key, type, value, itemType });
    const own = new Set(['general.file_type', 'general.quantization_version', 'general.alignment']);
    let vocabulary = false;
    if (gguf) {
      for (const [key, value] of gguf.metadata) {
        if (own.has(key)) continue;
        const t = gguf.metadataTypes.get(key)!;
        set(key, t.type, value, t.itemType);
      }
      vocabulary = gguf.metadata.has('tokenizer.ggml.tokens');
    } else {
      set('general.architecture', GGUF.STRING, arch);
      set('general.name', GGUF.STRING, model.replace(/^.*[/\\]/, ''));
      const u = (k: string, v: number) => set(`${arch}.${k}`, GGUF.U32, v);
      u('context_length', config.maxPositionEmbeddings);
      u('embedding_length', config.hiddenSize);
      u('block_count', config.numLayers);
      u('feed_forward_length', config.intermediateSize);
      u('attention.head_count', config.numHeads);
      u('attention.head_count_kv', config.numKvHeads);
      u('rope.dimension_count', config.rotaryDim ?? config.headDim);
      u('vocab_size', config.vocabSize);
      if (config.numHeads * config.headDim !== config.hiddenSize) {
        u('attention.key_length', config.headDim);
        u('attention.value_length', config.headDim);
      }
      set(`${arch}.attention.layer_norm_rms_epsilon`, GGUF.F32, config.rmsNormEps);
      set(`${arch}.rope.freq_base`, GGUF.F32, config.ropeTheta);
      if (config.slidingWindow) {
        // a GGUF's window is on every layer, or on the family's pattern of layers (Gemma's)
        const pattern = family.slidingPattern > 0 ? patternLayers(family.slidingPattern, config.numLayers) : null;
        const layers = config.slidingWindowLayers;
        if (layers && (!pattern || layers.length !== pattern.length || layers.some((l, i) => l !== pattern[i])))
          throw new MiniVllmError(
            `quantize: a sliding window on layers [${layers.join(', ')}] has no ${arch} GGUF form`,
            'ERR_UNSUPPORTED',
          );
        u('attention.sliding_window', config.slidingWindow);
      }
      for (const [k, v] of ggufGemmaMeta(config, arch)) set(`${arch}.${k}`, GGUF.F32, v);
      if (config.moe) {
        // a GGUF MoE's renormalisation is its architecture's (llama.cpp: Mixtral and Qwen3-MoE yes, OLMoE no)
        if (config.moe.renormalize !== family.moeRenormalize)
          throw new MiniVllmError(
            `quantize: a ${arch} MoE ${config.moe.renormalize ? 'with' : 'without'} norm_topk_prob has no GGUF form`,
            'ERR_UNSUPPORTED',
          );
        u('expert_count', config.moe.numExperts);
        u('expert_used_count', config.moe.topK);
        if (arch === 'qwen3moe' || arch === 'qwen2moe') u('expert_feed_forward_length', config.intermediateSize);
        if (config.moe.sharedExpertSize) u('expert_shared_feed_forward_length', config.moe.sharedExpertSize);
      }
      for (const [k, type, v] of rope.meta) set(`${arch}.${k}`, type, v);
      if (tokenizer instanceof SentencePieceTokenizer) {
        const v = tokenizer.vocabulary();
        set('tokenizer.ggml.model', GGUF.STRING, 'llama');
        set(
          'tokenizer.ggml.tokens',
          GGUF.ARRAY,
          v.pieces.map((p) => p.replaceAll(' ', '\u2581')),
          GGUF.STRING,
        );
        set('tokenizer.ggml.scores', GGUF.ARRAY, [...v.scores], GGUF.F32);
        set('tokenizer.ggml.token_type', GGUF.ARRAY, [...v.types], GGUF.I32);
        if (tokenizer.bosTokenId !== null) set('tokenizer.ggml.bos_token_id', GGUF.U32, tokenizer.bosTokenId);
        if (tokenizer.eosTokenIds.length > 0) set('tokenizer.ggml.eos_token_id', GGUF.U32, tokenizer.eosTokenIds[0]!);
        if (tokenizer.unkTokenId !== null) set('tokenizer.ggml.unknown_token_id', GGUF.U32, tokenizer.unkTokenId);
        set('tokenizer.ggml.add_bos_token', GGUF.BOOL, tokenizer.addBos);
        set('tokenizer.ggml.add_space_prefix', GGUF.BOOL, tokenizer.addSpacePrefix);
        if (tokenizer.chatTemplate !== null) set('tokenizer.chat_template', GGUF.STRING, tokenizer.chatTemplate);
        vocabulary = true;
      }
    }
    set('general.file_type', GGUF.U32, FILE_TYPE[target]);
    set('general.quantization_version', GGUF.U32, 2);
    set('general.alignment', GGUF.U32, GGUF_ALIGNMENT);

    // one GGUF tensor per name: a MoE's experts of one kind stacked into [numExperts, rows, cols], as llama.cpp does
    const byName = new Map<string, TensorPart[]>();
    for (const p of modelTensors(config, tied).flatMap((w) => w.parts))
      byName.set(p.gguf, [...(byName.get(p.gguf) ?? []), p]);
    const names = [...byName];
    // a MoE's experts are all quantised or all float (fusedMoe / quantFusedMoe): where one kind's rows cannot be
    // quantised (not whole blocks), the layer's experts stay F32
    const colsOf = (g: string) => source.shape(byName.get(g)![0]!.hf)[1] ?? 1;
    const typeOf = (g: string, cols: number): QuantType | null => {
      const m = /^blk\.(\d+)\.ffn_(gate|up|down)_exps\.weight$/.exec(g);
      if (!m) return targetType(target, g, cols, config.numLayers, tied);
      const kinds = ['gate', 'up', 'down'].map((k) => `blk.${m[1]}.ffn_${k}_exps.weight`);
      const all = kinds.map((k) => targetType(target, k, colsOf(k), config.numLayers, tied));
      return all.every((t) => t !== null) ? all[kinds.indexOf(g)]! : null;
    };
    const types: Record<string, string> = {};
    const tensors: GgufTensorOut[] = names.map(([g, parts], index) => {
      // llama.cpp's converter stores Gemma's norms as 1 + w
      const addUnit = !!parts[0]!.norm && !!config.addUnitToNorms;
      const one = [...source.shape(parts[0]!.hf)];
      const rows = one[0]!;
      const cols = one[1] ?? 1;
      const shape = parts[0]!.expert === undefined ? one : [parts.length, rows, cols];
      const type = one.length === 2 ? typeOf(g, cols) : null;
      types[g] = type ?? 'F32';
      const permute = permuteQk && /attn_[qk]\.weight$/.test(g) ? config.headDim : 0;
      const chunk = permute ? rows : Math.max(1, Math.floor((1 << 22) / cols));
      return {
        name: g,
        shape,
        typeId: type ? QUANT_FORMATS[type].id : 0,
        bytes: parts.length * (type ? rows * quantRowBytes(type, cols) : rows * cols * 4),
        *data() {
          opts.onTensor?.(g, types[g]!, index, names.length);
          for (const { hf: h } of parts)
            for (let r = 0; r < rows; r += chunk) {
              const n = Math.min(chunk, rows - r);
              let x = readRows(source, h, r, n, cols);
              if (permute) x = permuteHeads(x, n, cols, permute);
              if (addUnit) x = x.map((v) => v + 1);
              yield type ? quantizeRows(type, x, n, cols) : new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
            }
        },
      };
    });
    for (const [name, f] of rope.tensors) {
      tensors.push({
        name,
        shape: [f.length],
        typeId: 0,
        bytes: f.byteLength,
        data: () => [new Uint8Array(f.buffer, f.byteOffset, f.byteLength)],
      });
      types[name] = 'F32';
    }
    writeGguf(out, meta, tensors);
    return { types, vocabulary };
  } finally {
    source.close?.();
  }
}
