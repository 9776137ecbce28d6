// Memory planning: what a model will allocate (weights at their dtype, the KV cache, the largest step's workspace)
// against what the process can get, worked out before the first byte is allocated. A model that cannot fit is an
// ERR_OUT_OF_MEMORY naming each part and what would make it fit, instead of the kernel's out-of-memory killer.
import type { Device, FloatDType } from '../dtype.js';
import { MiniVllmError } from '../errors.js';
import { gib, hostMemory } from '../host-memory.js';
import { backends } from '../native.js';
import { deviceMemory } from '../runtime.js';
import { type LlamaConfig, parameterCount } from './config.js';

const MIB = 2 ** 20;
/** Left for what the plan does not count (Node's heap, the tokenizer, the thread pool, page tables). */
const HOST_MARGIN_MIN = 256 * MIB;
const HOST_MARGIN_MAX = 2048 * MIB;
const HOST_MARGIN_SHARE = 0.05;
/** Scratch the plan does not itemise: attention partials, decode-graph inputs, the CUDA context's own pools. */
const WORKSPACE_SLACK = 64 * MIB;

export interface MemoryPart {
  name: 'weights' | 'KV cache' | 'workspace';
  bytes: number;
  /** What the number is made of, for the message. */
  detail: string;
}

export interface MemoryBudget {
  /** Bytes the plan may use. */
  available: number;
  /** Where that came from, for the message. */
  source: string;
}

function itemBytes(dtype: FloatDType): number {
  return dtype === 'float32' ? 4 : 2;
}

/** Bytes of the weights as buildWeights lays them out (a tied classifier shares the embedding). */
export function weightsBytesFor(config: LlamaConfig, dtype: FloatDType, tied: boolean): number {
  return parameterCount({ ...config, tieWordEmbeddings: tied }) * itemBytes(dtype);
}

/** Bytes of K and V for one cache slot over all layers. */
export function kvBytesPerSlotFor(config: LlamaConfig, dtype: FloatDType): number {
  return 2 * config.numLayers * config.numKvHeads * config.headDim * itemBytes(dtype);
}

/**
 * The most the forward pass's activation buffers reach (they grow to at most twice a step's rows, capped as the
 * Workspace in llama.ts grows them), the logits rows, the sampler's float32 copies on the CPU, and a fixed slack.
 */
export function workspaceBytesFor(
  config: LlamaConfig,
  dtype: FloatDType,
  device: Device,
  maxNumBatchedTokens: number,
  maxNumSeqs: number,
): number {
  const { hiddenSize: d, intermediateSize: ff, vocabSize: v } = config;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const tokens = Math.min(2 * maxNumBatchedTokens, Math.max(maxNumBatchedTokens, 8192));
  const outputs = 2 * Math.min(maxNumSeqs, maxNumBatchedTokens);
  const activations = tokens * (2 * d + 2 * q + 2 * kv + 3 * ff) + outputs * (d + v);
  const sampler = device === 'cpu' ? outputs * v * 4 * 2 : 0;
  return activations * itemBytes(dtype) + sampler + WORKSPACE_SLACK;
}

/**
 * What the process can allocate on `device` now. CPU: the host's available memory (the container's limit included)
 * less a safety margin. CUDA: the device's share under gpuMemoryUtilization less what is already in use, as the
 * engine sizes its KV cache. null where there is no CUDA device to ask (allocating then fails with its own error).
 */
export function memoryBudget(device: Device, gpuMemoryUtilization = 0.9): MemoryBudget | null {
  if (device === 'cpu') {
    const host = hostMemory();
    const margin = Math.min(HOST_MARGIN_MAX, Math.max(HOST_MARGIN_MIN, host.available * HOST_MARGIN_SHARE));
    return {
      available: Math.max(0, host.available - margin),
      source: `${host.source}, less a ${gib(margin)} safety margin`,
    };
  }
  if (!backends().cuda.available) return null;
  const { free, total } = deviceMemory();
  return {
    available: Math.max(0, Math.floor(total * gpuMemoryUtilization - (total - free))),
    source: `gpuMemoryUtilization ${gpuMemoryUtilization} of ${gib(total)}, less ${gib(total - free)} in use`,
  };
}

/** Throws ERR_OUT_OF_MEMORY when the parts do not fit the budget, naming each part and the ways to make them fit. */
export function checkPlan(
  what: string,
  device: Device,
  parts: readonly MemoryPart[],
  budget: MemoryBudget,
  hints: readonly string[],
): void {
  const needed = parts.reduce((s, p) => s + p.bytes, 0);
  if (needed <= budget.available) return;
  const list = parts.map((p) => `${p.name} ${gib(p.bytes)} (${p.detail})`).join(', ');
  throw new MiniVllmError(
    `${what} does not fit in ${device} memory: it needs ${gib(needed)}: ${list}; ${gib(budget.available)} is ` +
      `available (${budget.source}). To fit: ${[...hints, 'a smaller model'].join('; ')}`,
    'ERR_OUT_OF_MEMORY',
  );
}

/** The hint for a float32 model whose 16-bit weights would fit where its float32 ones do not. */
export function dtypeHint(
  config: LlamaConfig,
  dtype: FloatDType,
  tied: boolean,
  fits: (weights: number) => boolean,
): string[] {
  if (dtype !== 'float32') return [];
  const half = weightsBytesFor(config, 'bfloat16', tied);
  return fits(half) ? [`--dtype bfloat16 (dtype: 'bfloat16'; weights ${gib(half)})`] : [];
}

/** loadModel's plan: the weights alone (an engine plans its KV cache and workspace with them: engine/kv-budget.ts). */
export function planWeights(
  what: string,
  config: LlamaConfig,
  dtype: FloatDType,
  device: Device,
  tied: boolean,
  weightsBytes?: number,
): void {
  const budget = memoryBudget(device);
  if (!budget) return;
  const weights = weightsBytes ?? weightsBytesFor(config, dtype, tied);
  const parts: MemoryPart[] = [{ name: 'weights', bytes: weights, detail: dtype }];
  checkPlan(
    what,
    device,
    parts,
    budget,
    dtypeHint(config, dtype, tied, (w) => w <= budget.available),
  );
}
