// What a model's parts take in memory (weights at their dtype, the KV cache per slot, the largest step's workspace),
// worked out before the first byte is allocated and set against what the process can get (memoryBudget, in
// lib/runtime.ts). A model that cannot fit is an ERR_OUT_OF_MEMORY naming each part and what would make it fit,
// instead of the kernel's out-of-memory killer. The engine's plan is lib/engine/kv-budget.ts; loadModel's, planWeights.
import type { Device, FloatDType } from '../dtype.js';
import { MiniVllmError } from '../errors.js';
import { gib } from '../host-memory.js';
import { type MemoryBudget, memoryBudget } from '../runtime.js';
import type { LlamaConfig } from './config.js';
import { parameterCount } from './tensors.js';

const MIB = 2 ** 20;
/** Scratch the plan does not itemise: attention partials, decode-graph inputs, the CUDA context's own pools. */
const WORKSPACE_SLACK = 64 * MIB;

export interface MemoryPart {
  name: 'weights' | 'KV cache' | 'workspace';
  bytes: number;
  /** What the number is made of, for the message. */
  detail: string;
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
 * The most the forward pass's activation buffers reach for steps of at most `tokens` tokens and `seqs` sequences
 * (they grow to at most twice a step's rows, capped as the Workspace in llama.ts grows them), the logits rows, the
 * sampler's float32 copies on the CPU, and a fixed slack.
 */
export function workspaceBytesFor(
  config: LlamaConfig,
  dtype: FloatDType,
  device: Device,
  tokens: number,
  seqs: number,
): number {
  const { hiddenSize: d, intermediateSize: ff, vocabSize: v } = config;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const rows = Math.min(2 * tokens, Math.max(tokens, 8192));
  const outputs = 2 * Math.min(seqs, tokens);
  // a MoE's MLP is its router's logits here, and fusedMoe's own scratch (below) instead of gate/up and act; a shared
  // expert's gate/up, act, output and gate beside them
  const s = config.moe?.sharedExpertSize;
  const mlp = config.moe ? config.moe.numExperts + (s ? 3 * s + d + 1 : 0) : 3 * ff;
  const activations = rows * (2 * d + 2 * q + 2 * kv + mlp) + outputs * (d + v);
  const sampler = device === 'cpu' ? outputs * v * 4 * 2 : 0;
  return activations * itemBytes(dtype) + sampler + moeScratchBytes(config, dtype, device, tokens) + WORKSPACE_SLACK;
}

/**
 * fusedMoe's scratch for a step of `tokens` tokens: on the CPU the fp32 sums and one expert's inputs and outputs (at
 * most every token); on CUDA each (token, expert) pair's activation and fp32 output row.
 */
function moeScratchBytes(config: LlamaConfig, dtype: FloatDType, device: Device, tokens: number): number {
  if (!config.moe) return 0;
  const { hiddenSize: d, intermediateSize: ff } = config;
  if (device === 'cpu') return tokens * d * 4 + tokens * (2 * d + 3 * ff) * itemBytes(dtype);
  return tokens * config.moe.topK * (ff * itemBytes(dtype) + d * 4);
}

/** What one model's parts take on its device: the numbers a plan is made of. */
export interface ModelMemory {
  /** The weights as their layout says (quantised blocks, packing's padding). */
  weights: number;
  /** K and V of one cache slot over all layers. */
  kvBytesPerSlot: number;
  /** The activations of the largest step asked for (workspaceBytesFor). */
  workspace: number;
  /** The same three at 16 bits, for a float32 model (what bfloat16 would take); null otherwise. */
  at16: { weights: number; kvBytesPerSlot: number; workspace: number } | null;
}

/**
 * The sizes a memory plan needs, in one call: the model's parts at its layout's dtype for steps of at most `tokens`
 * tokens and `seqs` sequences, and their 16-bit alternative.
 */
export function modelMemory(
  config: LlamaConfig,
  layout: { dtype: FloatDType; device: Device; tied: boolean; bytes: number },
  step: { tokens: number; seqs: number },
): ModelMemory {
  const { dtype, device, tied } = layout;
  const sized = (dt: FloatDType) => ({
    kvBytesPerSlot: kvBytesPerSlotFor(config, dt),
    workspace: workspaceBytesFor(config, dt, device, step.tokens, step.seqs),
  });
  return {
    weights: layout.bytes,
    ...sized(dtype),
    at16: dtype === 'float32' ? { weights: weightsBytesFor(config, 'bfloat16', tied), ...sized('bfloat16') } : null,
  };
}

/**
 * The ERR_OUT_OF_MEMORY for parts that do not fit the budget: each part, what is available, and the ways to make
 * them fit (`at16`: what the weights and the whole plan take at bfloat16, hinted where that fits).
 */
export function memoryError(
  what: string,
  device: Device,
  parts: readonly MemoryPart[],
  budget: MemoryBudget,
  hints: readonly string[],
  at16: { weights: number; total: number } | null,
): MiniVllmError {
  const needed = parts.reduce((s, p) => s + p.bytes, 0);
  const list = parts.map((p) => `${p.name} ${gib(p.bytes)} (${p.detail})`).join(', ');
  const all = [...hints];
  if (at16 && at16.total <= budget.available)
    all.unshift(`--dtype bfloat16 (dtype: 'bfloat16'; weights ${gib(at16.weights)})`);
  return new MiniVllmError(
    `${what} does not fit in ${device} memory: it needs ${gib(needed)}: ${list}; ${gib(budget.available)} is ` +
      `available (${budget.source}). To fit: ${[...all, 'a smaller model'].join('; ')}`,
    'ERR_OUT_OF_MEMORY',
  );
}

/** loadModel's plan: the weights alone (an engine plans its KV cache and workspace with them: engine/kv-budget.ts). */
export function planWeights(
  what: string,
  config: LlamaConfig,
  layout: { dtype: FloatDType; device: Device; tied: boolean; bytes: number },
): void {
  const { dtype, device, tied, bytes } = layout;
  const budget = memoryBudget(device);
  if (!budget || bytes <= budget.available) return;
  const half = dtype === 'float32' ? weightsBytesFor(config, 'bfloat16', tied) : null;
  const parts: MemoryPart[] = [{ name: 'weights', bytes, detail: dtype }];
  throw memoryError(what, device, parts, budget, [], half === null ? null : { weights: half, total: half });
}
