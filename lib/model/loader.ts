// loadModel(): a model and its tokenizer from a Hugging Face directory, a llama2.c checkpoint, a GGUF file, or
// `dummy:<preset>`, onto a device in the requested dtype. It opens the model (lib/model/open.ts), checks that the
// weights fit (lib/model/memory-plan.ts), and builds them (buildModel: buildWeights copies the file's tensors, chunk by
// chunk, into the device tensors its layout names, then the LlamaModel over them); the engine does the same three
// steps with its KV cache and workspace in the plan (lib/engine/kv-budget.ts).
import { MiniVllmError, ModelFormatError } from '../errors.js';
import type { WeightSource } from '../formats/file.js';
import { quantRowWords } from '../quant/formats.js';
import { quantizeRows } from '../quant/quantize.js';
import { QuantizedTensor } from '../quant/tensor.js';
import { Tensor } from '../tensor.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { LlamaConfig } from './config.js';
import { disposeWeight, type LinearWeight, PackedQuantWeight, PackedWeight } from './linear-weight.js';
import { disposeWeights, LlamaModel, type LlamaWeights, type MoeExperts } from './llama.js';
import { planWeights } from './memory-plan.js';
import {
  type ModelFormat,
  openModel,
  type OpenedModel,
  type OpenOptions,
  type WeightLayout,
  type WeightPart,
} from './open.js';
import type { LoadProgress } from './weights.js';

export interface LoadOptions extends OpenOptions {
  onProgress?: LoadProgress;
}

export interface LoadedModel {
  model: LlamaModel;
  tokenizer: Tokenizer;
  config: LlamaConfig;
  format: ModelFormat;
  /** What was loaded: the path, or `dummy:<preset>`. */
  source: string;
  loadSeconds: number;
}

/** Loads a model and its tokenizer; rejects with a ModelFormatError naming the file for a bad one. */
export function loadModel(model: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  return new Promise((resolve) => {
    const opened = openModel(model, opts, 'loadModel');
    try {
      const { config, layout } = opened;
      planWeights(`loadModel: ${model}`, config, layout);
    } catch (e) {
      opened.source.close?.();
      throw e;
    }
    resolve(buildModel(opened, opts.onProgress));
  });
}

/** Builds an opened model's weights on its device as its layout says, and closes its file. */
export function buildModel(opened: OpenedModel, onProgress?: LoadProgress): LoadedModel {
  const { config, source, layout } = opened;
  let llama: LlamaModel;
  try {
    const weights = buildWeights(config, source, layout, onProgress);
    try {
      llama = new LlamaModel(config, weights, { dtype: layout.dtype, device: layout.device });
    } catch (e) {
      disposeWeights(weights);
      throw e;
    }
  } catch (e) {
    if (e instanceof MiniVllmError || e instanceof RangeError || e instanceof TypeError) throw e;
    throw new ModelFormatError(opened.model, (e as Error).message);
  } finally {
    source.close?.();
  }
  return {
    model: llama,
    tokenizer: opened.tokenizer,
    config,
    format: opened.format,
    source: opened.model,
    loadSeconds: (performance.now() - opened.startedAt) / 1000,
  };
}

const ROWS_PER_CHUNK_ELEMENTS = 1 << 22;

/** A MoE layer's stacked experts: float or quantised, one type each (fusedMoe / quantFusedMoe take them so). */
function expertsOf(file: string, w13: LinearWeight, w2: LinearWeight): MoeExperts {
  const one = (w: LinearWeight, name: string) => {
    if (w instanceof Tensor || w instanceof QuantizedTensor || w instanceof PackedQuantWeight) return w;
    throw new MiniVllmError(`${file}: the experts' ${name} mix quantised types (not supported)`, 'ERR_UNSUPPORTED');
  };
  const [a, b] = [one(w13, 'gate and up'), one(w2, 'down')];
  if (a instanceof Tensor !== b instanceof Tensor)
    throw new MiniVllmError(
      `${file}: the experts' gate/up and down must be both float or both quantised`,
      'ERR_UNSUPPORTED',
    );
  return { w13: a, w2: b };
}

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
    if (p.addUnit) {
      // a Gemma norm vector stored as w of (1 + w): made 1 + w on the host, as llama.cpp's converter does
      dst.write(src.read(p.name, 0, rows).map((x) => x + 1));
      return progress(rows * itemBytes);
    }
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
        if (e.pack) {
          made.set(e.key, PackedQuantWeight.pack(dst));
          dst.dispose();
        }
      } else {
        const parts: (Tensor | QuantizedTensor | PackedQuantWeight)[] = [];
        made.set(e.key, { parts });
        for (const p of e.parts) {
          if (p.type) {
            const dst = QuantizedTensor.empty(p.type, p.shape[0]!, p.shape[1]!, device);
            parts.push(dst);
            fillQuant(p, dst);
            if (e.pack && PackedQuantWeight.packs(p.type, p.shape[0]!)) {
              parts[parts.length - 1] = PackedQuantWeight.pack(dst);
              dst.dispose();
            }
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
    if (!(
      t instanceof Tensor ||
      t instanceof QuantizedTensor ||
      t instanceof PackedWeight ||
      t instanceof PackedQuantWeight
    ))
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
      ...(config.moe ? {} : { gateUp: get(`${i}.gateUp`), down: get(`${i}.down`) }),
      ...(config.attentionBias ? { qkvBias: float(`${i}.qkvBias`) } : {}),
      ...(config.qkNorm ? { qNorm: float(`${i}.qNorm`), kNorm: float(`${i}.kNorm`) } : {}),
      ...(config.moe
        ? { router: get(`${i}.router`), experts: expertsOf(src.file, get(`${i}.w13`), get(`${i}.w2`)) }
        : {}),
      ...(config.moe?.sharedExpertSize
        ? {
            sharedGateUp: get(`${i}.sharedGateUp`),
            sharedDown: get(`${i}.sharedDown`),
            sharedGate: get(`${i}.sharedGate`),
          }
        : {}),
      ...(made.has(`${i}.attnOutNorm`)
        ? { attnOutNorm: float(`${i}.attnOutNorm`), ffnOutNorm: float(`${i}.ffnOutNorm`) }
        : {}),
    })),
    norm: float('norm'),
    lmHead: tied ? embedding : get('lmHead'),
  };
}
