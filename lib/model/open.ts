// Opening a model: its config and tokenizer from a Hugging Face directory, a llama2.c checkpoint, a GGUF file, or
// `dummy:<preset>`, its weights opened for reading, and the layout they will take on the device, before anything is
// allocated (lib/model/loader.ts builds them; the engine plans its memory in between).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Device, type FloatDType, isDevice, isFloatDType } from '../dtype.js';
import { ModelFormatError } from '../errors.js';
import { defaultDevice } from '../native.js';
import { fillUniform } from '../ops/random.js';
import { type QuantType, quantRowWords } from '../quant/formats.js';
import { describeValue, Tensor } from '../tensor.js';
import { HfTokenizer } from '../tokenizer/hf.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import { syntheticTokenizer } from '../tokenizer/synthetic.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { LlamaConfig } from './config.js';
import { configFromHf } from './config-hf.js';
import { presetConfig } from './presets.js';
import { modelTensors } from './tensors.js';
import { BinaryFile } from '../formats/file.js';
import type { WeightSource } from '../formats/file.js';
import { openGguf } from '../formats/gguf.js';
import { ggufModel } from './gguf-model.js';
import { PackedQuantWeight } from './linear-weight.js';
import { openLlama2c } from './llama2c.js';
import { openSafetensors, safetensorsFiles } from '../formats/safetensors.js';
import { hfName, languageModelSource, LOAD_QUANTIZATIONS, type LoadQuantization } from './weights.js';

export type ModelFormat = 'hf' | 'llama2c' | 'gguf' | 'dummy';

/** Which format a model argument names. */
export function modelFormat(model: string): ModelFormat {
  if (model.startsWith('dummy:')) return 'dummy';
  let isDir: boolean;
  try {
    isDir = statSync(model).isDirectory();
  } catch {
    throw new ModelFormatError(
      model,
      'no such file or directory (expected a Hugging Face directory, a .bin, a .gguf or dummy:<preset>)',
    );
  }
  if (isDir) return 'hf';
  const f = new BinaryFile(model);
  try {
    return f.size >= 4 && f.bytes(0, 4, 'the magic').toString('latin1') === 'GGUF' ? 'gguf' : 'llama2c';
  } finally {
    f.close();
  }
}

function tokenizerFromFile(path: string, vocabSize: number, eosTokenIds: readonly number[]): Tokenizer {
  if (path.endsWith('.json')) return HfTokenizer.fromFile(path, { eosTokenIds });
  return SentencePieceTokenizer.fromLlama2c(path, vocabSize);
}

/** llama2.c's run.c reads tokenizer.bin by default; the stories models ship tok<N>.bin beside them. */
function llama2cTokenizerPath(model: string): string {
  const dir = dirname(model);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    names = [];
  }
  if (names.includes('tokenizer.bin')) return join(dir, 'tokenizer.bin');
  const toks = names.filter((n) => /^tok\d+\.bin$/.test(n));
  if (toks.length === 1) return join(dir, toks[0]!);
  throw new ModelFormatError(
    model,
    `no tokenizer found beside the checkpoint (tokenizer.bin or one tok<N>.bin in ${dir}); pass --tokenizer`,
  );
}

/** Uniform ±1e-3 weights, as vLLM's dummy load format, made on the device (ops.fillUniform), seeded per tensor. */
function dummySource(config: LlamaConfig, label: string, seed: number): WeightSource {
  const seedOf = (name: string) => {
    let h = 2166136261 ^ seed;
    for (let i = 0; i < name.length; ++i) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
    return h >>> 0;
  };
  const shapes = new Map<string, number[]>();
  for (const w of modelTensors(config)) for (const p of w.parts) shapes.set(p.hf, p.shape);
  return {
    file: label,
    has: (n) => shapes.has(n),
    shape: (n) => shapes.get(n)!,
    read(name, row, rows) {
      // Host copy of the same values: fill a float32 tensor with the whole tensor's stream, keep the rows asked for.
      const shape = shapes.get(name)!;
      const width = shape[1] ?? 1;
      using t = Tensor.empty([(row + rows) * width], { dtype: 'float32', device: 'cpu' });
      fillUniform(t, -1e-3, 1e-3, seedOf(name));
      return (t.toArray() as Float32Array).subarray(row * width);
    },
    fill: (name, dst) => fillUniform(dst, -1e-3, 1e-3, seedOf(name)),
  };
}

/** generation_config.json's eos_token_id (Llama 3 instruct models end turns with <|eot_id|> there), if any. */
function generationEos(dir: string, vocabSize: number): number[] {
  const file = join(dir, 'generation_config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  let eos: unknown;
  try {
    eos = (JSON.parse(text) as { eos_token_id?: unknown }).eos_token_id;
  } catch (e) {
    throw new ModelFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
  const ids = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  if (!ids.every((id) => Number.isInteger(id) && id >= 0 && id < vocabSize))
    throw new ModelFormatError(
      file,
      `eos_token_id ${JSON.stringify(eos)} is not a token id (or list of them) below ${vocabSize}`,
    );
  return ids as number[];
}

function resolveDevice(
  opts: OpenOptions,
  caller: string,
): { device: Device; dtype: FloatDType; quantization: LoadQuantization | null } {
  const device = opts.device ?? defaultDevice();
  if (!isDevice(device)) throw new TypeError(`${caller}: device must be 'cpu' or 'cuda', got ${describeValue(device)}`);
  const want = opts.dtype ?? 'auto';
  if (want !== 'auto' && !isFloatDType(want))
    throw new TypeError(
      `${caller}: dtype must be 'auto', 'float32', 'float16' or 'bfloat16', got ${describeValue(want)}`,
    );
  const q = opts.quantization ?? null;
  if (q !== null && !(LOAD_QUANTIZATIONS as readonly unknown[]).includes(q))
    throw new TypeError(`${caller}: quantization must be 'q8_0', 'q4_0' or null, got ${describeValue(q)}`);
  return { device, dtype: want === 'auto' ? (device === 'cuda' ? 'bfloat16' : 'float32') : want, quantization: q };
}

export interface OpenOptions {
  /** Default: cuda where a device is present, else cpu. */
  device?: Device;
  /** Default 'auto': float32 on the CPU, bfloat16 on CUDA. */
  dtype?: FloatDType | 'auto';
  /** A tokenizer file to use instead of the model's (tokenizer.json, or a llama2.c tok*.bin). */
  tokenizer?: string;
  /** Seed of a dummy model's weights (default 0). */
  seed?: number;
  /**
   * Quantise the float matrices as they load (vLLM's online quantisation): 'q8_0', or 'q4_0' (its output head in
   * Q6_K, as llama.cpp's Q4_0 files). A quantised file's tensors stay as they are. Default none.
   */
  quantization?: LoadQuantization | null;
}

/** A model file opened, nothing allocated yet: what it is, and what its weights will take on the device. */
export interface OpenedModel {
  /** The path, or `dummy:<preset>`. */
  model: string;
  config: LlamaConfig;
  /** The file's tensors (buildModel closes it, or the caller with source.close). */
  source: WeightSource;
  tokenizer: Tokenizer;
  format: ModelFormat;
  layout: WeightLayout;
  /** performance.now() when opening began (loadSeconds counts from it). */
  startedAt: number;
}

/** Reads a model's config and tokenizer, opens its weights for reading and plans their layout on the device. */
export function openModel(model: string, opts: OpenOptions, caller: string): OpenedModel {
  const startedAt = performance.now();
  const { device, dtype, quantization } = resolveDevice(opts, caller);
  if (typeof model !== 'string' || model.length === 0)
    throw new TypeError(`${caller}: model must be a path or dummy:<preset>, got ${describeValue(model)}`);
  const format = modelFormat(model);
  let config: LlamaConfig;
  let source: WeightSource;
  let tokenizer: Tokenizer;
  switch (format) {
    case 'dummy': {
      config = presetConfig(model.slice('dummy:'.length));
      source = dummySource(config, model, opts.seed ?? 0);
      tokenizer = opts.tokenizer
        ? tokenizerFromFile(opts.tokenizer, config.vocabSize, config.eosTokenIds)
        : syntheticTokenizer(config.vocabSize, { bosTokenId: config.bosTokenId, eosTokenIds: config.eosTokenIds });
      break;
    }
    case 'llama2c': {
      const ckpt = openLlama2c(model);
      config = ckpt.config;
      source = ckpt.source;
      try {
        tokenizer = tokenizerFromFile(
          opts.tokenizer ?? llama2cTokenizerPath(model),
          config.vocabSize,
          config.eosTokenIds,
        );
      } catch (e) {
        source.close?.();
        throw e;
      }
      break;
    }
    case 'gguf': {
      const g = openGguf(model);
      try {
        ({ config, source } = ggufModel(g));
        tokenizer = opts.tokenizer
          ? tokenizerFromFile(opts.tokenizer, config.vocabSize, config.eosTokenIds)
          : g.metadata.get('tokenizer.ggml.model') === 'gpt2'
            ? HfTokenizer.fromGguf(g, { eosTokenIds: config.eosTokenIds })
            : SentencePieceTokenizer.fromGguf(g);
      } catch (e) {
        g.file.close();
        throw e;
      }
      break;
    }
    case 'hf': {
      const cfgFile = join(model, 'config.json');
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(cfgFile, 'utf8'));
      } catch (e) {
        throw new ModelFormatError(cfgFile, `cannot read the model config (${(e as Error).message})`);
      }
      config = configFromHf(json, cfgFile);
      config.eosTokenIds = [...new Set([...config.eosTokenIds, ...generationEos(model, config.vocabSize)])];
      tokenizer = opts.tokenizer
        ? tokenizerFromFile(opts.tokenizer, config.vocabSize, config.eosTokenIds)
        : HfTokenizer.fromDir(model, { eosTokenIds: config.eosTokenIds });
      source = languageModelSource(openSafetensors(safetensorsFiles(model), model));
      break;
    }
  }
  if (tokenizer.vocabSize > config.vocabSize) {
    source.close?.();
    throw new ModelFormatError(
      model,
      `the tokenizer has ${tokenizer.vocabSize} tokens, the model only ${config.vocabSize}`,
    );
  }
  try {
    const layout = planWeightLayout(config, source, { dtype, device, quantization });
    return { model, config, source, tokenizer, format, layout, startedAt };
  } catch (e) {
    source.close?.();
    throw e;
  }
}

/**
 * A model's config and tokenizer without its weights: what a front end that tokenizes, while another thread holds
 * the model, needs.
 */
export function loadTokenizer(
  model: string,
  opts: Pick<OpenOptions, 'tokenizer'> = {},
): Promise<{ tokenizer: Tokenizer; config: LlamaConfig }> {
  return new Promise((resolve) => {
    const { config, source, tokenizer } = openModel(model, { ...opts, device: 'cpu' }, 'loadTokenizer');
    source.close?.();
    resolve({ tokenizer, config });
  });
}

function expectShape(src: WeightSource, name: string, shape: readonly number[]): void {
  if (!src.has(name)) throw new ModelFormatError(src.file, `tensor "${name}" is missing`);
  const got = src.shape(name);
  if (got.length !== shape.length || got.some((d, i) => d !== shape[i]))
    throw new ModelFormatError(
      src.file,
      `tensor "${name}" has shape [${got.join(', ')}], the config needs [${shape.join(', ')}]`,
    );
}

/** A file tensor of a device tensor; addUnit: a Gemma norm stored as w of (1 + w), which the loader makes 1 + w. */
export type WeightPart = { name: string; shape: number[]; type: QuantType | null; addUnit?: true };
/** One device tensor and the source tensors stacked into it, in row order. */
export interface WeightPlanEntry {
  key: string;
  shape: number[];
  parts: WeightPart[];
  /**
   * Packed for the CPU: a float matrix for its GEMM (PackedWeight), its rows padded to whole panels of 16 (the elements
   * that adds); a Q4_0 / Q8_0 / Q4_K / Q6_K one, or such parts of a stack, interleaved for its GEMV
   * (PackedQuantWeight, no padding).
   */
  pack: { padding: number } | null;
}

/** What buildWeights will make of a model file on a device, decided before anything is allocated. */
export interface WeightLayout {
  entries: WeightPlanEntry[];
  /** Bytes of every device tensor, quantised ones at their block size and packing's padding included. */
  bytes: number;
  /** Whether the classifier is the embedding (tied, or no lm_head in the file). */
  tied: boolean;
  dtype: FloatDType;
  device: Device;
}

/** The quantised type a float matrix takes at load: llama.cpp's choices for its Q8_0 / Q4_0 files. */
function loadType(q: LoadQuantization, name: string, cols: number, tied: boolean): QuantType | null {
  if (cols % 32 !== 0) return null;
  const head = name === hfName.lmHead || (tied && name === hfName.embedding);
  if (q === 'q4_0' && head) return cols % 256 === 0 ? 'Q6_K' : 'Q8_0';
  return q === 'q8_0' ? 'Q8_0' : 'Q4_0';
}

/**
 * What buildWeights will make of `src` on `device` at `dtype`: every device tensor, its parts, each part's quantised
 * type (the file's, the load quantisation's, or null for float), whether the CPU packs it, after checking every shape;
 * and the bytes they take.
 */
export function planWeightLayout(
  config: LlamaConfig,
  src: WeightSource,
  opts: { dtype: FloatDType; device: Device; quantization: LoadQuantization | null },
): WeightLayout {
  const tied = config.tieWordEmbeddings || !src.has(hfName.lmHead);
  // The CPU packs the matrices linear layers read, a tied embedding (the classifier) too: float ones into panels of 16
  // (PackedWeight), Q4_0, Q8_0, Q4_K and Q6_K ones interleaved by 8 rows for its GEMV; unless MINI_VLLM_CPU_PACK=0 (an
  // A/B switch, pack-ab.mjs).
  const packing = opts.device === 'cpu' && process.env['MINI_VLLM_CPU_PACK'] !== '0';
  const entries: WeightPlanEntry[] = [];
  const add = (key: string, parts: { name: string; shape: number[]; addUnit?: true }[], experts = false) => {
    const rows = parts.reduce((s, p) => s + p.shape[0]!, 0);
    const typed = parts.map((p) => {
      expectShape(src, p.name, p.shape);
      const fileType = src.quantType?.(p.name);
      if (fileType !== undefined && p.shape.length === 1)
        throw new ModelFormatError(
          src.file,
          `tensor "${p.name}" is a vector stored as ${fileType}: norms and biases must be float`,
        );
      const type =
        fileType ??
        (p.shape.length === 2 && opts.quantization ? loadType(opts.quantization, p.name, p.shape[1]!, tied) : null);
      return { ...p, type };
    });
    const cols = parts[0]!.shape[1];
    // a MoE's stacked experts stay as fusedMoe reads them
    const linear = packing && !experts && cols !== undefined && (key !== 'embedding' || tied);
    const type = typed[0]!.type;
    const packs = linear && typed.every((p) => !p.type);
    // a quantised matrix of one type is interleaved where the CPU has a layout for it (no padding); a stack of types,
    // part by part
    const oneType = !!type && typed.every((p) => p.type === type);
    // a MoE's quantised experts are interleaved too where both of a layer's stacks can be (below)
    const interleaves = experts
      ? packing && oneType && PackedQuantWeight.packs(type, rows)
      : oneType
        ? linear && PackedQuantWeight.packs(type, rows)
        : linear && typed.some((p) => p.type && PackedQuantWeight.packs(p.type, p.shape[0]!));
    entries.push({
      key,
      shape: cols === undefined ? [rows] : [rows, cols],
      parts: typed,
      pack: packs ? { padding: (Math.ceil(rows / 16) * 16 - rows) * cols } : interleaves ? { padding: 0 } : null,
    });
  };
  for (const w of modelTensors(config, tied))
    add(
      w.key,
      w.parts.map((p) => ({
        name: p.hf,
        shape: p.shape,
        ...(p.norm && config.addUnitToNorms ? { addUnit: true } : {}),
      })),
      !!w.experts,
    );
  // quantFusedMoePacked reads both of a layer's expert stacks interleaved, or quantFusedMoe neither
  for (let i = 0; config.moe && i < config.numLayers; ++i) {
    const pair = entries.filter((e) => e.key === `${i}.w13` || e.key === `${i}.w2`);
    if (!pair.every((e) => e.pack)) for (const e of pair) e.pack = null;
  }
  const itemBytes = opts.dtype === 'float32' ? 4 : 2;
  let bytes = 0;
  for (const e of entries) {
    for (const p of e.parts) {
      const cols = p.shape[1] ?? 1;
      bytes += p.type ? p.shape[0]! * quantRowWords(p.type, cols) * 4 : p.shape[0]! * cols * itemBytes;
    }
    bytes += (e.pack?.padding ?? 0) * itemBytes;
  }
  return { entries, bytes, tied, dtype: opts.dtype, device: opts.device };
}
