// Engine options: vLLM's engine arguments in camelCase, with their defaults, checked once on the caller's thread.
import type { Device, FloatDType } from '../dtype.js';
import { isDevice, isFloatDType } from '../dtype.js';
import type { LlamaConfig } from '../model/config.js';
import { LOAD_QUANTIZATIONS, type LoadQuantization } from '../model/weights.js';
import { backends, defaultDevice } from '../native.js';
import { numThreads } from '../runtime.js';
import { describeValue } from '../tensor.js';

export interface EngineOptions {
  /** A Hugging Face directory, a llama2.c .bin, a .gguf, or dummy:<preset>. Default dummy:stories15M. */
  model?: string;
  /** Default: cuda where a device is present, else cpu. */
  device?: Device;
  /** Default 'auto': float32 on the CPU, bfloat16 on CUDA. */
  dtype?: FloatDType | 'auto';
  /** A tokenizer file to use instead of the model's. */
  tokenizer?: string;
  /**
   * Quantise the float weights as they load: 'q8_0' or 'q4_0' (vLLM's online quantisation; lib/model/open.ts).
   * A quantised GGUF needs none. Default none.
   */
  quantization?: LoadQuantization | null;
  /**
   * Engine cores, each a whole engine (model, KV cache, scheduler) in its own worker: on CUDA core i uses device i; on
   * the CPU each core gets an equal share of the threads. A request goes to the core with the fewest outstanding
   * tokens, preferring one that holds its prompt's prefix (vLLM's data parallelism). Default 1.
   */
  dataParallelSize?: number;
  /** Most sequences in one step. Default 256. */
  maxNumSeqs?: number;
  /** Most tokens in one step, prefill and decode together. Default 2048. */
  maxNumBatchedTokens?: number;
  /** Longest sequence, prompt and output. Default: the model's context length. */
  maxModelLen?: number;
  /** Tokens per KV-cache block. Default 16. */
  blockSize?: number;
  /** CUDA: share of the device's memory the engine may fill (weights, activations, KV cache). Default 0.9. */
  gpuMemoryUtilization?: number;
  /**
   * Bytes of KV cache. CPU default: what maxNumSeqs sequences of maxModelLen need, at most 4 GiB and at most what the
   * host's memory leaves after the weights and workspace (lib/engine/kv-budget.ts). On CUDA it replaces
   * the gpuMemoryUtilization sizing when given.
   */
  kvCacheBytes?: number;
  /** Reuse the KV of prompt prefixes seen before (a shared system prompt). Default true. */
  enablePrefixCaching?: boolean;
  /** Split prompts longer than the step's token budget over several steps. Default true. */
  enableChunkedPrefill?: boolean;
  /** Seeds the draws of requests without their own seed (default: random), and a dummy model's weights (default 0). */
  seed?: number;
  /**
   * Run every step eagerly instead of replaying recorded decode graphs (CUDA graphs, or CPU graphs on the CPU; vLLM's
   * enforce_eager). Default false.
   */
  enforceEager?: boolean;
  /**
   * The decode batch sizes to record as graphs (a larger batch runs eagerly). Default on CUDA 1, 2, 4, 8, then every
   * 16 up to maxNumSeqs, and maxNumSeqs itself; on the CPU every size up to maxNumSeqs, each recorded when first used.
   */
  cudaGraphCaptureSizes?: number[];
}

export interface ResolvedEngineOptions {
  model: string;
  device: Device;
  dtype: FloatDType | 'auto';
  quantization: LoadQuantization | null;
  tokenizer: string | null;
  dataParallelSize: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  maxModelLen: number | null;
  blockSize: number;
  gpuMemoryUtilization: number;
  kvCacheBytes: number | null;
  enablePrefixCaching: boolean;
  enableChunkedPrefill: boolean;
  seed: number | null;
  enforceEager: boolean;
  /** null: the default ladder for maxNumSeqs. */
  cudaGraphCaptureSizes: number[] | null;
}

/**
 * The options once the model's config is known (finishEngineOptions, called once: InferenceEngine.create on the
 * caller's thread, or EngineCore.fromLoaded): every field decided, maxModelLen included. What the engine core, its
 * worker, the KV budget, the scheduler and the runner read.
 */
export interface EngineConfig extends ResolvedEngineOptions {
  maxModelLen: number;
}

export const DEFAULT_MODEL = 'dummy:stories15M';
export const DEFAULT_CPU_KV_CACHE_BYTES = 4 * 2 ** 30;

function posInt(o: Record<string, unknown>, key: string, fallback: number | null, max = 2 ** 31 - 1): number | null {
  const v = o[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number') throw new TypeError(`InferenceEngine: ${key} must be a number, got ${describeValue(v)}`);
  if (!Number.isInteger(v) || v < 1 || v > max)
    throw new RangeError(`InferenceEngine: ${key} must be an integer in [1, ${max}], got ${v}`);
  return v;
}

function bool(o: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new TypeError(`InferenceEngine: ${key} must be a boolean, got ${describeValue(v)}`);
  return v;
}

/** Fills in defaults and checks every field: TypeError for a wrong type, RangeError for a wrong value, naming it. */
export function resolveEngineOptions(options: EngineOptions = {}): ResolvedEngineOptions {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`InferenceEngine: options must be an object, got ${describeValue(options)}`);
  const o = options as Record<string, unknown>;
  const model = o['model'] ?? DEFAULT_MODEL;
  if (typeof model !== 'string' || model.length === 0)
    throw new TypeError(`InferenceEngine: model must be a path or dummy:<preset>, got ${describeValue(model)}`);
  const device = o['device'] ?? defaultDevice();
  if (!isDevice(device))
    throw new TypeError(`InferenceEngine: device must be 'cpu' or 'cuda', got ${describeValue(device)}`);
  const dtype = o['dtype'] ?? 'auto';
  if (dtype !== 'auto' && !isFloatDType(dtype))
    throw new TypeError(
      `InferenceEngine: dtype must be 'auto', 'float32', 'float16' or 'bfloat16', got ${describeValue(dtype)}`,
    );
  const quantization = o['quantization'] ?? null;
  if (quantization !== null && !(LOAD_QUANTIZATIONS as readonly unknown[]).includes(quantization))
    throw new TypeError(
      `InferenceEngine: quantization must be 'q8_0', 'q4_0' or null, got ${describeValue(quantization)}`,
    );
  const tokenizer = o['tokenizer'] ?? null;
  if (tokenizer !== null && typeof tokenizer !== 'string')
    throw new TypeError(`InferenceEngine: tokenizer must be a path, got ${describeValue(tokenizer)}`);
  const util = o['gpuMemoryUtilization'] ?? 0.9;
  if (typeof util !== 'number')
    throw new TypeError(`InferenceEngine: gpuMemoryUtilization must be a number, got ${describeValue(util)}`);
  if (!(util > 0 && util <= 1))
    throw new RangeError(`InferenceEngine: gpuMemoryUtilization must be in (0, 1], got ${util}`);
  const kvBytes = o['kvCacheBytes'] ?? null;
  if (kvBytes !== null && typeof kvBytes !== 'number')
    throw new TypeError(`InferenceEngine: kvCacheBytes must be a number, got ${describeValue(kvBytes)}`);
  if (kvBytes !== null && !(Number.isSafeInteger(kvBytes) && kvBytes > 0))
    throw new RangeError(`InferenceEngine: kvCacheBytes must be a positive integer, got ${kvBytes}`);
  const seed = o['seed'] ?? null;
  if (seed !== null && (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0))
    throw new TypeError(`InferenceEngine: seed must be a non-negative integer, got ${describeValue(seed)}`);
  const sizes = o['cudaGraphCaptureSizes'] ?? null;
  if (sizes !== null && !(Array.isArray(sizes) && sizes.length > 0 && sizes.every((v) => typeof v === 'number')))
    throw new TypeError(
      `InferenceEngine: cudaGraphCaptureSizes must be a non-empty array of numbers, got ${describeValue(sizes)}`,
    );
  const enableChunkedPrefill = bool(o, 'enableChunkedPrefill', true);
  const r: ResolvedEngineOptions = {
    model,
    device,
    dtype,
    quantization: quantization as LoadQuantization | null,
    tokenizer,
    dataParallelSize: posInt(o, 'dataParallelSize', 1, 64)!,
    maxNumSeqs: posInt(o, 'maxNumSeqs', 256, 65536)!,
    maxNumBatchedTokens: posInt(o, 'maxNumBatchedTokens', defaultTokenBudget(device, enableChunkedPrefill), 1 << 20)!,
    maxModelLen: posInt(o, 'maxModelLen', null),
    blockSize: posInt(o, 'blockSize', 16, 1024)!,
    gpuMemoryUtilization: util,
    kvCacheBytes: kvBytes,
    enablePrefixCaching: bool(o, 'enablePrefixCaching', true),
    enableChunkedPrefill,
    seed,
    enforceEager: bool(o, 'enforceEager', false),
    cudaGraphCaptureSizes: sizes === null ? null : [...new Set(sizes)].sort((a, b) => a - b),
  };
  const maxBatch = maxDecodeBatch(r);
  for (const v of r.cudaGraphCaptureSizes ?? [])
    if (!Number.isInteger(v) || v < 1 || v > maxBatch)
      throw new RangeError(
        `InferenceEngine: cudaGraphCaptureSizes entries must be integers in [1, ${maxBatch}] (the largest decode ` +
          `batch: maxNumSeqs and maxNumBatchedTokens), got ${v}`,
      );
  const known = new Set(Object.keys(r));
  for (const k of Object.keys(o))
    if (!known.has(k)) throw new TypeError(`InferenceEngine: unknown option ${JSON.stringify(k)}`);
  return r;
}

/**
 * The step's token budget when none is given: 2048, as vLLM's; on the CPU with chunked prefill, 256. A CPU step of
 * 2048 prompt tokens takes seconds, and prompts that arrive together all wait for the last of them: on the 2-core
 * development machine, stories110M at concurrency 16 (128 in, 64 out) had its median TTFT fall from 3.9 s at 2048 to
 * 1.3 s at 256 for the same output tokens/s; the price is paid by the decodes that now share steps with prefill
 * chunks (TPOT p50 78 -> 108 ms, ITL p99 274 -> 522 ms). The curve: bench/results/2026-11-30-cpu-throughput/.
 */
export function defaultTokenBudget(device: Device, enableChunkedPrefill: boolean): number {
  return device === 'cpu' && enableChunkedPrefill ? 256 : 2048;
}

/**
 * Whether this machine has room for dataParallelSize cores: a CUDA device each, or at least one CPU thread each
 * (numThreads: MINI_VLLM_NUM_THREADS, or every core). RangeError naming the limit otherwise.
 */
export function checkDataParallel(r: Pick<ResolvedEngineOptions, 'dataParallelSize' | 'device'>): void {
  const n = r.dataParallelSize;
  if (n === 1) return;
  const have = r.device === 'cuda' ? backends().cuda.devices.length : numThreads();
  if (n > have)
    throw new RangeError(
      `InferenceEngine: dataParallelSize ${n} needs ${n} ${r.device === 'cuda' ? 'CUDA devices' : 'CPU threads'}, ` +
        `this machine has ${have}`,
    );
}

/** The most sequences one decode step can hold: one token each, within both step limits. */
export function maxDecodeBatch(r: Pick<ResolvedEngineOptions, 'maxNumSeqs' | 'maxNumBatchedTokens'>): number {
  return Math.min(r.maxNumSeqs, r.maxNumBatchedTokens);
}

/** The options once the model's config is known: maxModelLen filled in and checked against the model and the budget. */
export function finishEngineOptions(r: ResolvedEngineOptions, config: LlamaConfig): EngineConfig {
  const maxModelLen = r.maxModelLen ?? config.maxPositionEmbeddings;
  if (maxModelLen > config.maxPositionEmbeddings)
    throw new RangeError(
      `InferenceEngine: maxModelLen ${maxModelLen} is longer than the model's context ` +
        `(${config.maxPositionEmbeddings})`,
    );
  if (maxModelLen < 2) throw new RangeError(`InferenceEngine: maxModelLen must be at least 2, got ${maxModelLen}`);
  if (!r.enableChunkedPrefill && r.maxNumBatchedTokens < maxModelLen)
    throw new RangeError(
      `InferenceEngine: without chunked prefill maxNumBatchedTokens (${r.maxNumBatchedTokens}) must be at least ` +
        `maxModelLen (${maxModelLen}), or a long prompt could never run`,
    );
  return { ...r, maxModelLen };
}
