// Llama weights on a device: every loader exposes its file as a WeightSource under Hugging Face tensor names, and
// buildWeights() copies them, chunk by chunk, into fused device tensors of the requested dtype.
import { ModelFormatError } from '../errors.js';
import type { WeightSource } from '../formats/file.js';
import { quantRowWords } from '../quant/formats.js';
import { quantizeRows } from '../quant/quantize.js';
import { QuantizedTensor } from '../quant/tensor.js';
import { Tensor } from '../tensor.js';
import type { LlamaConfig } from './config.js';
import { disposeWeight, type LinearWeight, PackedWeight, weightBytes } from './linear-weight.js';
import type { WeightLayout, WeightPart } from './open.js';

// The matrices are float tensors or quantised ones (linear-weight.ts); a fused projection whose source tensors
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

const ROWS_PER_CHUNK_ELEMENTS = 1 << 22;

export const hfName = {
  embedding: 'model.embed_tokens.weight',
  norm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  layer: (i: number, what: string) => `model.layers.${i}.${what}.weight`,
};

/** Reads every tensor of the layout (lib/model/open.ts: planWeightLayout) from `src` into device tensors. */
export function buildWeights(
  config: LlamaConfig,
  src: WeightSource,
  layout: WeightLayout,
  onProgress?: LoadProgress,
): LlamaWeights {
  const { entries, bytes: total, tied, dtype, device } = layout;
  const itemBytes = dtype === 'float32' ? 4 : 2;
  let done = 0;
  const made = new Map<string, LinearWeight>();
  const progress = (n: number) => {
    done += n;
    onProgress?.(done, total);
  };
  // A float part: rows into `dst` (converted by write), or the source's own fill.
  const fillFloat = (p: WeightPart, dst: Tensor) => {
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
  const fillQuant = (p: WeightPart, dst: QuantizedTensor) => {
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
        const dst = Tensor.empty(e.shape, { dtype, device });
        made.set(e.key, dst);
        let row = 0;
        for (const p of e.parts) {
          fillFloat(p, dst.narrow(0, row, p.shape[0]!));
          row += p.shape[0]!;
        }
        if (e.pack) {
          made.set(e.key, PackedWeight.pack(dst));
          dst.dispose();
          if (e.pack.padding > 0) progress(e.pack.padding * itemBytes);
        }
      } else if (types.size === 1) {
        const type = e.parts[0]!.type!;
        const dst = QuantizedTensor.empty(type, e.shape[0]!, e.shape[1]!, device);
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
            const dst = QuantizedTensor.empty(p.type, p.shape[0]!, p.shape[1]!, device);
            parts.push(dst);
            fillQuant(p, dst);
          } else {
            const dst = Tensor.empty(p.shape, { dtype, device });
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
