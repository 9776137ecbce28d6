// Llama weights on a device: every loader exposes its file as a WeightSource under Hugging Face tensor names, and
// buildWeights() copies them, chunk by chunk, into fused device tensors of the requested dtype.
import type { Device, FloatDType } from '../dtype.js';
import { ModelFormatError } from '../errors.js';
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
  close?(): void;
}

export interface LayerWeights {
  inputNorm: Tensor; //    [hidden]
  qkv: Tensor; //          [(numHeads + 2 numKvHeads) headDim, hidden]: q, k, v projections stacked
  o: Tensor; //            [hidden, numHeads headDim]
  postNorm: Tensor; //     [hidden]
  gateUp: Tensor; //       [2 intermediate, hidden]: gate then up, as siluAndMul reads them
  down: Tensor; //         [hidden, intermediate]
}

export interface LlamaWeights {
  embedding: Tensor; //    [vocab, hidden]
  layers: LayerWeights[];
  norm: Tensor; //         [hidden]
  lmHead: Tensor; //       [vocab, hidden]: the embedding itself when tied
}

export interface LoadProgress {
  /** Bytes of device tensors written so far, and in all. */
  (done: number, total: number): void;
}

export interface BuildOptions {
  dtype: FloatDType;
  device: Device;
  onProgress?: LoadProgress | undefined;
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

/** Reads every tensor the config needs from `src` (checking each shape) into device tensors. */
export function buildWeights(config: LlamaConfig, src: WeightSource, opts: BuildOptions): LlamaWeights {
  const { hiddenSize: d, intermediateSize: ff, headDim: hd, numHeads: nh, numKvHeads: nkv, vocabSize: v } = config;
  const tieLmHead = config.tieWordEmbeddings || !src.has(hfName.lmHead);
  // Each device tensor and the source tensors stacked into it, in row order.
  type Part = { name: string; shape: number[] };
  const plan: { key: string; shape: number[]; parts: Part[] }[] = [];
  const add = (key: string, parts: Part[]) => {
    const rows = parts.reduce((s, p) => s + p.shape[0]!, 0);
    plan.push({ key, shape: parts[0]!.shape.length === 1 ? [rows] : [rows, parts[0]!.shape[1]!], parts });
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
  if (!tieLmHead) add('lmHead', [{ name: hfName.lmHead, shape: [v, d] }]);

  // Check every shape before allocating anything.
  for (const t of plan) for (const p of t.parts) expectShape(src, p.name, p.shape);

  const itemBytes = opts.dtype === 'float32' ? 4 : 2;
  const total = plan.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * itemBytes, 0);
  let done = 0;
  const tensors = new Map<string, Tensor>();
  try {
    for (const t of plan) {
      const dst = Tensor.empty(t.shape, { dtype: opts.dtype, device: opts.device });
      tensors.set(t.key, dst);
      let row = 0;
      for (const p of t.parts) {
        const rows = p.shape[0]!;
        const width = p.shape.length === 1 ? 1 : p.shape[1]!;
        if (src.fill) {
          src.fill(p.name, dst.narrow(0, row, rows));
          done += rows * width * itemBytes;
          opts.onProgress?.(done, total);
          row += rows;
          continue;
        }
        const chunk = Math.max(1, Math.floor(ROWS_PER_CHUNK_ELEMENTS / width));
        for (let r = 0; r < rows; r += chunk) {
          const n = Math.min(chunk, rows - r);
          const data = src.read(p.name, r, n);
          dst.narrow(0, row + r, n).write(data);
          done += n * width * itemBytes;
          opts.onProgress?.(done, total);
        }
        row += rows;
      }
    }
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  }
  const get = (k: string) => tensors.get(k)!;
  const embedding = get('embedding');
  return {
    embedding,
    layers: Array.from({ length: config.numLayers }, (_, i) => ({
      inputNorm: get(`${i}.inputNorm`),
      qkv: get(`${i}.qkv`),
      o: get(`${i}.o`),
      postNorm: get(`${i}.postNorm`),
      gateUp: get(`${i}.gateUp`),
      down: get(`${i}.down`),
    })),
    norm: get('norm'),
    lmHead: tieLmHead ? embedding : get('lmHead'),
  };
}

export function disposeWeights(w: LlamaWeights): void {
  w.embedding.dispose();
  w.lmHead.dispose();
  w.norm.dispose();
  for (const l of w.layers) layerTensors(l).forEach((t) => t.dispose());
}

export function weightsBytes(w: LlamaWeights): number {
  const all = new Set<Tensor>([w.embedding, w.lmHead, w.norm, ...w.layers.flatMap(layerTensors)]);
  let n = 0;
  for (const t of all) n += t.byteLength;
  return n;
}

function layerTensors(l: LayerWeights): Tensor[] {
  return [l.inputNorm, l.qkv, l.o, l.postNorm, l.gateUp, l.down];
}
