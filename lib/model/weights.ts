// Llama weights on a device: every loader exposes its file as a WeightSource under Hugging Face tensor names, and
// buildWeights() copies them, chunk by chunk, into fused device tensors of the requested dtype.
import type { Device, FloatDType } from '../dtype.js';
import { ModelFormatError } from '../errors.js';
import { type QuantType, quantRowWords } from '../quant/formats.js';
import { quantizeRows } from '../quant/quantize.js';
import { disposeWeight, type LinearWeight, PackedWeight, QuantizedTensor, weightBytes } from '../quant/tensor.js';
import { Tensor } from '../tensor.js';
import type { LlamaConfig } from './config.js';

/** A model file's tensors under Hugging Face names (`model.layers.0.self_attn.q_proj.weight`, ...). */
export interface WeightSource {
  /** What errors name: the file (or directory) the tensors come from. */
  readonly file: string;
  has(name: string): boolean;
  /** Row-major shape, outermost first (a GGUF's ne[] reversed). */
  shape(name: string): readonly number[];
  /** Rows [row, row + rows) of the tensor (viewed as [shape[0], rest]) as float32. */
  read(name: string, row: number, rows: number): Float32Array;
  /** Writes the whole tensor straight into `dst` on its device instead (generated weights), if the source can. */
  fill?(name: string, dst: Tensor): void;
  /** The tensor's quantised block type, if it is stored quantised (a GGUF's); `read` does not read those. */
  quantType?(name: string): QuantType | undefined;
  /** Rows [row, row + rows) of a quantised tensor: its ggml blocks, row after row. */
  readRaw?(name: string, row: number, rows: number): Uint8Array;
  close?(): void;
}

// The matrices are float tensors or quantised ones (lib/quant/tensor.ts); a fused projection whose source tensors
// have different quantised types (a K-quant mix) is a stack of its parts. On the CPU the float matrices that only
// linear layers read (not the embedding) are packed for its GEMM (PackedWeight), their rows padded to 16.
export interface LayerWeights {
  inputNorm: Tensor; //       [hidden]
  qkv: LinearWeight; //       [(numHeads + 2 numKvHeads) headDim, hidden]: q, k, v projections stacked
  o: LinearWeight; //         [hidden, numHeads headDim]
  postNorm: Tensor; //        [hidden]
  gateUp: LinearWeight; //    [2 intermediate, hidden]: gate then up, as siluAndMul reads them
  down: LinearWeight; //      [hidden, intermediate]
}

export interface LlamaWeights {
  embedding: Tensor | QuantizedTensor; //  [vocab, hidden]
  layers: LayerWeights[];
  norm: Tensor; //                          [hidden]
  lmHead: LinearWeight; //                 [vocab, hidden]: the embedding itself when tied
}

/** Quantisation at load (vLLM's online quantisation): float matrices become these blocks as they load. */
export type LoadQuantization = 'q8_0' | 'q4_0';
export const LOAD_QUANTIZATIONS: readonly LoadQuantization[] = ['q8_0', 'q4_0'];

export interface LoadProgress {
  /** Bytes of device tensors written so far, and in all. */
  (done: number, total: number): void;
}

export interface BuildOptions {
  dtype: FloatDType;
  device: Device;
  onProgress?: LoadProgress | undefined;
  quantization?: LoadQuantization | null | undefined;
}

const ROWS_PER_CHUNK_ELEMENTS = 1 << 22;

export const hfName = {
  embedding: 'model.embed_tokens.weight',
  norm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  layer: (i: number, what: string) => `model.layers.${i}.${what}.weight`,
};

function expectShape(src: WeightSource, name: string, shape: readonly number[]): void {
  if (!src.has(name)) throw new ModelFormatError(src.file, `tensor "${name}" is missing`);
  const got = src.shape(name);
  if (got.length !== shape.length || got.some((d, i) => d !== shape[i]))
    throw new ModelFormatError(
      src.file,
      `tensor "${name}" has shape [${got.join(', ')}], the config needs [${shape.join(', ')}]`,
    );
}

type Part = { name: string; shape: number[]; type: QuantType | null };
/** One device tensor and the source tensors stacked into it, in row order. */
export interface WeightPlanEntry {
  key: string;
  shape: number[];
  parts: Part[];
}

/** The quantised type a float matrix takes at load: llama.cpp's choices for its Q8_0 / Q4_0 files. */
function loadType(q: LoadQuantization, name: string, cols: number, tied: boolean): QuantType | null {
  if (cols % 32 !== 0) return null;
  const head = name === hfName.lmHead || (tied && name === hfName.embedding);
  if (q === 'q4_0' && head) return cols % 256 === 0 ? 'Q6_K' : 'Q8_0';
  return q === 'q8_0' ? 'Q8_0' : 'Q4_0';
}

/**
 * What buildWeights will make of `src`: every device tensor, its parts, each part's quantised type (the file's, the
 * load quantisation's, or null for float), after checking every shape; and the bytes they take.
 */
export function planWeightLayout(
  config: LlamaConfig,
  src: WeightSource,
  opts: Pick<BuildOptions, 'dtype' | 'quantization'> & { device?: Device },
): { entries: WeightPlanEntry[]; bytes: number; tied: boolean } {
  const { hiddenSize: d, intermediateSize: ff, headDim: hd, numHeads: nh, numKvHeads: nkv, vocabSize: v } = config;
  const tied = config.tieWordEmbeddings || !src.has(hfName.lmHead);
  const entries: WeightPlanEntry[] = [];
  const add = (key: string, parts: { name: string; shape: number[] }[]) => {
    const rows = parts.reduce((s, p) => s + p.shape[0]!, 0);
    const typed = parts.map((p) => {
      expectShape(src, p.name, p.shape);
      const fileType = src.quantType?.(p.name);
      if (fileType !== undefined && p.shape.length === 1)
        throw new ModelFormatError(
          src.file,
          `tensor "${p.name}" is a vector stored as ${fileType}: norms must be float`,
        );
      const type =
        fileType ??
        (p.shape.length === 2 && opts.quantization ? loadType(opts.quantization, p.name, p.shape[1]!, tied) : null);
      return { ...p, type };
    });
    entries.push({ key, shape: parts[0]!.shape.length === 1 ? [rows] : [rows, parts[0]!.shape[1]!], parts: typed });
  };
  add('embedding', [{ name: hfName.embedding, shape: [v, d] }]);
  for (let i = 0; i < config.numLayers; ++i) {
    const L = (w: string) => hfName.layer(i, w);
    add(`${i}.inputNorm`, [{ name: L('input_layernorm'), shape: [d] }]);
    add(`${i}.qkv`, [
      { name: L('self_attn.q_proj'), shape: [nh * hd, d] },
      { name: L('self_attn.k_proj'), shape: [nkv * hd, d] },
      { name: L('self_attn.v_proj'), shape: [nkv * hd, d] },
    ]);
    add(`${i}.o`, [{ name: L('self_attn.o_proj'), shape: [d, nh * hd] }]);
    add(`${i}.postNorm`, [{ name: L('post_attention_layernorm'), shape: [d] }]);
    add(`${i}.gateUp`, [
      { name: L('mlp.gate_proj'), shape: [ff, d] },
      { name: L('mlp.up_proj'), shape: [ff, d] },
    ]);
    add(`${i}.down`, [{ name: L('mlp.down_proj'), shape: [d, ff] }]);
  }
  add('norm', [{ name: hfName.norm, shape: [d] }]);
  if (!tied) add('lmHead', [{ name: hfName.lmHead, shape: [v, d] }]);
  const itemBytes = opts.dtype === 'float32' ? 4 : 2;
  let bytes = 0;
  for (const e of entries) {
    for (const p of e.parts) {
      const cols = p.shape[1] ?? 1;
      bytes += p.type ? p.shape[0]! * quantRowWords(p.type, cols) * 4 : p.shape[0]! * cols * itemBytes;
    }
    if (packsOn(opts.device) && packs(e)) bytes += packPadding(e) * itemBytes;
  }
  return { entries, bytes, tied };
}

/** Whether buildWeights packs on this device: the CPU, unless MINI_VLLM_CPU_PACK=0 (an A/B switch, pack-ab.mjs). */
function packsOn(device: Device | undefined): boolean {
  return device === 'cpu' && process.env['MINI_VLLM_CPU_PACK'] !== '0';
}

/** Whether buildWeights packs this entry on the CPU: a float matrix only linear layers read. */
function packs(e: WeightPlanEntry): boolean {
  return e.shape.length === 2 && e.key !== 'embedding' && e.parts.every((p) => !p.type);
}

/** The elements packing adds: the rows up to a whole panel of 16. */
function packPadding(e: WeightPlanEntry): number {
  return (Math.ceil(e.shape[0]! / 16) * 16 - e.shape[0]!) * e.shape[1]!;
}

/** Reads every tensor the config needs from `src` (checking each shape) into device tensors. */
export function buildWeights(config: LlamaConfig, src: WeightSource, opts: BuildOptions): LlamaWeights {
  const { entries, bytes: total, tied } = planWeightLayout(config, src, opts);
  const pack = packsOn(opts.device);
  const itemBytes = opts.dtype === 'float32' ? 4 : 2;
  let done = 0;
  const made = new Map<string, LinearWeight>();
  const progress = (n: number) => {
    done += n;
    opts.onProgress?.(done, total);
  };
  // A float part: rows into `dst` (converted by write), or the source's own fill.
  const fillFloat = (p: Part, dst: Tensor) => {
    const rows = p.shape[0]!;
    const width = p.shape.length === 1 ? 1 : p.shape[1]!;
    if (src.fill) {
      src.fill(p.name, dst);
      return progress(rows * width * itemBytes);
    }
    const chunk = Math.max(1, Math.floor(ROWS_PER_CHUNK_ELEMENTS / width));
    for (let r = 0; r < rows; r += chunk) {
      const n = Math.min(chunk, rows - r);
      dst.narrow(0, r, n).write(src.read(p.name, r, n));
      progress(n * width * itemBytes);
    }
  };
  // A quantised part: the file's blocks as they are, or float rows quantised here.
  const fillQuant = (p: Part, dst: QuantizedTensor) => {
    const [rows, cols] = p.shape as [number, number];
    const type = p.type!;
    const chunk = Math.max(1, Math.floor(ROWS_PER_CHUNK_ELEMENTS / cols));
    for (let r = 0; r < rows; r += chunk) {
      const n = Math.min(chunk, rows - r);
      const raw = src.quantType?.(p.name)
        ? src.readRaw!(p.name, r, n)
        : quantizeRows(type, src.read(p.name, r, n), n, cols);
      dst.writeRows(r, n, raw);
      progress(n * quantRowWords(type, cols) * 4);
    }
  };
  try {
    for (const e of entries) {
      const types = new Set(e.parts.map((p) => p.type));
      if (types.size === 1 && !e.parts[0]!.type) {
        const dst = Tensor.empty(e.shape, { dtype: opts.dtype, device: opts.device });
        made.set(e.key, dst);
        let row = 0;
        for (const p of e.parts) {
          fillFloat(p, dst.narrow(0, row, p.shape[0]!));
          row += p.shape[0]!;
        }
        if (pack && packs(e)) {
          made.set(e.key, PackedWeight.pack(dst));
          dst.dispose();
          if (packPadding(e) > 0) progress(packPadding(e) * itemBytes);
        }
      } else if (types.size === 1) {
        const type = e.parts[0]!.type!;
        const dst = QuantizedTensor.empty(type, e.shape[0]!, e.shape[1]!, opts.device);
        made.set(e.key, dst);
        let row = 0;
        for (const p of e.parts) {
          fillQuant(p, dst.narrow(row, p.shape[0]!));
          row += p.shape[0]!;
        }
      } else {
        const parts: (Tensor | QuantizedTensor)[] = [];
        made.set(e.key, { parts });
        for (const p of e.parts) {
          if (p.type) {
            const dst = QuantizedTensor.empty(p.type, p.shape[0]!, p.shape[1]!, opts.device);
            parts.push(dst);
            fillQuant(p, dst);
          } else {
            const dst = Tensor.empty(p.shape, { dtype: opts.dtype, device: opts.device });
            parts.push(dst);
            fillFloat(p, dst);
          }
        }
      }
    }
  } catch (e) {
    for (const t of made.values()) disposeWeight(t);
    throw e;
  }
  const get = (k: string) => made.get(k)!;
  const table = (k: string) => {
    const t = get(k);
    if (!(t instanceof Tensor || t instanceof QuantizedTensor))
      throw new ModelFormatError(src.file, `${k} must be one float or quantised table`);
    return t;
  };
  const float = (k: string) => {
    const t = get(k);
    if (!(t instanceof Tensor)) throw new ModelFormatError(src.file, `${k} must be float`);
    return t;
  };
  const embedding = table('embedding');
  return {
    embedding,
    layers: Array.from({ length: config.numLayers }, (_, i) => ({
      inputNorm: float(`${i}.inputNorm`),
      qkv: get(`${i}.qkv`),
      o: get(`${i}.o`),
      postNorm: float(`${i}.postNorm`),
      gateUp: get(`${i}.gateUp`),
      down: get(`${i}.down`),
    })),
    norm: float('norm'),
    lmHead: tied ? embedding : get('lmHead'),
  };
}

export function disposeWeights(w: LlamaWeights): void {
  w.embedding.dispose();
  if (w.lmHead !== w.embedding) disposeWeight(w.lmHead);
  w.norm.dispose();
  for (const l of w.layers) layerWeights(l).forEach(disposeWeight);
}

export function weightsBytes(w: LlamaWeights): number {
  const all = new Set<LinearWeight>([w.embedding, w.lmHead, w.norm, ...w.layers.flatMap(layerWeights)]);
  let n = 0;
  for (const t of all) n += weightBytes(t);
  return n;
}

function layerWeights(l: LayerWeights): LinearWeight[] {
  return [l.inputNorm, l.qkv, l.o, l.postNorm, l.gateUp, l.down];
}
