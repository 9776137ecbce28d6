// loadModel(): a model and its tokenizer from a Hugging Face directory, a llama2.c checkpoint, a GGUF file, or
// `dummy:<preset>`, onto a device in the requested dtype.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Device, type FloatDType, isDevice, isFloatDType } from '../dtype.js';
import { MiniVllmError, ModelFormatError } from '../errors.js';
import { defaultDevice } from '../native.js';
import { fillUniform } from '../ops/random.js';
import { describeValue, Tensor } from '../tensor.js';
import { HfTokenizer } from '../tokenizer/hf.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import { syntheticTokenizer } from '../tokenizer/synthetic.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { BinaryFile } from './file.js';
import { configFromHf, type LlamaConfig, presetConfig } from './config.js';
import { ggufModel, openGguf } from './gguf.js';
import { LlamaModel } from './llama.js';
import { openLlama2c } from './llama2c.js';
import { openSafetensors, safetensorsFiles } from './safetensors.js';
import { planWeights } from './memory-plan.js';
import {
  buildWeights,
  disposeWeights,
  LOAD_QUANTIZATIONS,
  type LoadProgress,
  type LoadQuantization,
  planWeightLayout,
  type WeightSource,
} from './weights.js';

export type ModelFormat = 'hf' | 'llama2c' | 'gguf' | 'dummy';

export interface LoadOptions {
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
  onProgress?: LoadProgress;
  /**
   * @internal plans the memory instead of loadModel's own plan of the weights alone (the engine adds its KV cache and
   * workspace); called with the config before anything is allocated, throws to refuse.
   */
  plan?: (config: LlamaConfig, dtype: FloatDType, device: Device, tied: boolean, weightsBytes: number) => void;
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
  const d = config.hiddenSize,
    hd = config.headDim;
  shapes.set('model.embed_tokens.weight', [config.vocabSize, d]);
  shapes.set('model.norm.weight', [d]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [config.vocabSize, d]);
  for (let i = 0; i < config.numLayers; ++i) {
    const L = (w: string) => `model.layers.${i}.${w}.weight`;
    shapes.set(L('input_layernorm'), [d]);
    shapes.set(L('post_attention_layernorm'), [d]);
    shapes.set(L('self_attn.q_proj'), [config.numHeads * hd, d]);
    shapes.set(L('self_attn.k_proj'), [config.numKvHeads * hd, d]);
    shapes.set(L('self_attn.v_proj'), [config.numKvHeads * hd, d]);
    shapes.set(L('self_attn.o_proj'), [d, config.numHeads * hd]);
    shapes.set(L('mlp.gate_proj'), [config.intermediateSize, d]);
    shapes.set(L('mlp.up_proj'), [config.intermediateSize, d]);
    shapes.set(L('mlp.down_proj'), [d, config.intermediateSize]);
  }
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

function resolveDevice(opts: LoadOptions): { device: Device; dtype: FloatDType } {
  const device = opts.device ?? defaultDevice();
  if (!isDevice(device)) throw new TypeError(`loadModel: device must be 'cpu' or 'cuda', got ${describeValue(device)}`);
  const want = opts.dtype ?? 'auto';
  if (want !== 'auto' && !isFloatDType(want))
    throw new TypeError(
      `loadModel: dtype must be 'auto', 'float32', 'float16' or 'bfloat16', got ${describeValue(want)}`,
    );
  const q = opts.quantization ?? null;
  if (q !== null && !(LOAD_QUANTIZATIONS as readonly unknown[]).includes(q))
    throw new TypeError(`loadModel: quantization must be 'q8_0', 'q4_0' or null, got ${describeValue(q)}`);
  return { device, dtype: want === 'auto' ? (device === 'cuda' ? 'bfloat16' : 'float32') : want };
}

/** Loads a model and its tokenizer; rejects with a ModelFormatError naming the file for a bad one. */
export function loadModel(model: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  return new Promise((resolve) => resolve(load(model, opts)));
}

export interface OpenedModel {
  config: LlamaConfig;
  source: WeightSource;
  tokenizer: Tokenizer;
  format: ModelFormat;
}

/** Reads a model's config and tokenizer and opens its weights for reading (the caller closes `source`). */
export function openModel(model: string, opts: Pick<LoadOptions, 'tokenizer' | 'seed'>, caller: string): OpenedModel {
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
      source = openSafetensors(safetensorsFiles(model), model);
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
  return { config, source, tokenizer, format };
}

/**
 * A model's config and tokenizer without its weights: what a front end that tokenizes, while another thread holds
 * the model, needs.
 */
export function loadTokenizer(
  model: string,
  opts: Pick<LoadOptions, 'tokenizer'> = {},
): Promise<{ tokenizer: Tokenizer; config: LlamaConfig }> {
  return new Promise((resolve) => {
    const { config, source, tokenizer } = openModel(model, opts, 'loadTokenizer');
    source.close?.();
    resolve({ tokenizer, config });
  });
}

function load(model: string, opts: LoadOptions): LoadedModel {
  const { device, dtype } = resolveDevice(opts);
  const start = performance.now();
  const { config, source, tokenizer, format } = openModel(model, opts, 'loadModel');
  let llama: LlamaModel;
  try {
    const quantization = opts.quantization ?? null;
    const layout = planWeightLayout(config, source, { dtype, quantization, device });
    if (opts.plan) opts.plan(config, dtype, device, layout.tied, layout.bytes);
    else planWeights(`loadModel: ${model}`, config, dtype, device, layout.tied, layout.bytes);
    const weights = buildWeights(config, source, { dtype, device, onProgress: opts.onProgress, quantization });
    try {
      llama = new LlamaModel(config, weights, { dtype, device });
    } catch (e) {
      disposeWeights(weights);
      throw e;
    }
  } catch (e) {
    if (e instanceof MiniVllmError || e instanceof RangeError || e instanceof TypeError) throw e;
    throw new ModelFormatError(model, (e as Error).message);
  } finally {
    source.close?.();
  }
  return { model: llama, tokenizer, config, format, source: model, loadSeconds: (performance.now() - start) / 1000 };
}
