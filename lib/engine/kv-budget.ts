// Start-up and the KV budget: how many KV-cache blocks an engine gets, and why, read top to bottom.
//
// 1. The model is opened (lib/model/open.ts): its config, tokenizer, and the bytes its weights will take on the device
//    (quantised tensors at their block size, the CPU's packed panels with their padding). Nothing is allocated yet.
// 2. The plan: weights + KV cache + workspace (the largest step's activations) against the memory the process can get
//    (lib/runtime.ts: memoryBudget; lib/model/memory-plan.ts: modelMemory gives each part's size in one call). A plan
//    that cannot fit is one ERR_OUT_OF_MEMORY naming each part and what would make it fit, before the first weight is
//    allocated.
// 3. The weights are built (lib/model/loader.ts: buildModel).
// 4. The KV cache's bytes: kvCacheBytes where given (vLLM's kv_cache_memory_bytes, either device); on the CPU by
//    default what the plan left after the weights and workspace, at most 4 GiB and at most what maxNumSeqs sequences
//    of maxModelLen need; on CUDA by default gpuMemoryUtilization of the device less what is in use after a profiling
//    step of the largest shapes, as vLLM sizes it. Blocks = bytes / (blockSize x the model's KV bytes per token), at
//    least one sequence of maxModelLen.
// 5. The KV cache is allocated here, as vLLM's runner allocates it: per layer, K and V pools of
//    [numBlocks, blockSize, numKvHeads, headDim] in the model's dtype on its device.
import { attentionScale, type LlamaConfig } from '../model/config.js';
import type { KvCache, LlamaModel } from '../model/llama.js';
import { buildModel, type LoadedModel } from '../model/loader.js';
import { type MemoryPart, memoryError, modelMemory } from '../model/memory-plan.js';
import { openModel } from '../model/open.js';
import type { LoadProgress } from '../model/weights.js';
import { deviceMemory, memoryBudget, synchronize } from '../runtime.js';
import { describeValue, Tensor } from '../tensor.js';
import { DEFAULT_CPU_KV_CACHE_BYTES, type EngineConfig } from './options.js';

const MIB = 2 ** 20;

/** The model on its device and the KV cache the budget leaves it. */
export interface KvBudget {
  loaded: LoadedModel;
  kv: KvCache;
}

/** Opens the model, plans weights + KV cache + workspace, builds the weights, and allocates the KV cache. */
export function loadWithKvBudget(c: EngineConfig, onProgress?: LoadProgress): KvBudget {
  if (typeof c?.maxModelLen !== 'number')
    throw new TypeError(
      'EngineCore.create: options must be final (finishEngineOptions with the model config), got maxModelLen ' +
        `${describeValue(c?.maxModelLen)}; InferenceEngine.create and EngineCore.fromLoaded finish them`,
    );
  const opened = openModel(c.model, loadOptions(c), 'InferenceEngine');
  let kvBytes: number | null;
  try {
    const { config, layout } = opened;
    kvBytes = planMemory(c.model, c, config, layout, true);
  } catch (e) {
    opened.source.close?.();
    throw e;
  }
  const loaded = buildModel(opened, onProgress);
  try {
    return { loaded, kv: allocateKvCache(loaded.model, kvBlocks(loaded.model, c, kvBytes), c.blockSize) };
  } catch (e) {
    loaded.model.dispose();
    throw e;
  }
}

/** The KV cache for a model already loaded (its weights are in use already, not still to allocate). */
export function kvCacheForLoaded(loaded: LoadedModel, c: EngineConfig): KvCache {
  const { model } = loaded;
  const layout = { dtype: model.dtype, device: model.device, tied: true, bytes: 0 };
  const blocks = kvBlocks(model, c, planMemory(loaded.source, c, loaded.config, layout, false));
  return allocateKvCache(model, blocks, c.blockSize);
}

/**
 * The paged K/V pools for `model`: per layer, K and V of [numBlocks, blockSize, numKvHeads, headDim] in the model's
 * dtype on its device (what LlamaModel.forward reads and reshapeAndCache writes).
 */
export function allocateKvCache(model: LlamaModel, numBlocks: number, blockSize = 16): KvCache {
  if (!Number.isInteger(numBlocks) || numBlocks < 1)
    throw new RangeError(`allocateKvCache: numBlocks must be a positive integer, got ${describeValue(numBlocks)}`);
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new RangeError(`allocateKvCache: blockSize must be a positive integer, got ${describeValue(blockSize)}`);
  const c = model.config;
  const shape = [numBlocks, blockSize, c.numKvHeads, c.headDim];
  const opts = { dtype: model.dtype, device: model.device };
  const key: Tensor[] = [];
  const value: Tensor[] = [];
  try {
    for (let i = 0; i < c.numLayers; ++i) {
      key.push(Tensor.empty(shape, opts));
      value.push(Tensor.empty(shape, opts));
    }
  } catch (e) {
    [...key, ...value].forEach((t) => t.dispose());
    throw e;
  }
  return { key, value, numBlocks, blockSize };
}

export function disposeKvCache(kv: KvCache): void {
  for (const t of [...kv.key, ...kv.value]) t.dispose();
}

function loadOptions(c: EngineConfig) {
  return {
    device: c.device,
    dtype: c.dtype,
    quantization: c.quantization,
    seed: c.seed ?? 0,
    ...(c.tokenizer === null ? {} : { tokenizer: c.tokenizer }),
  };
}

/**
 * The plan of weights (when still to load), the KV cache and the workspace against the budget; ERR_OUT_OF_MEMORY
 * where they cannot fit. Returns the KV cache's bytes where the plan fixes them (kvCacheBytes; the CPU's default),
 * or null on CUDA, whose cache is sized after a profiling step (the plan counts one full-length sequence there).
 */
export function planMemory(
  what: string,
  c: EngineConfig,
  config: LlamaConfig,
  layout: { dtype: LlamaModel['dtype']; device: LlamaModel['device']; tied: boolean; bytes: number },
  loadsWeights: boolean,
): number | null {
  const { device } = layout;
  const budget = memoryBudget(device, c.gpuMemoryUtilization);
  if (!budget) return c.kvCacheBytes;
  const m = modelMemory(config, layout, { tokens: c.maxNumBatchedTokens, seqs: c.maxNumSeqs });
  const blockBytes = c.blockSize * m.kvBytesPerSlot;
  const seqBlocks = Math.ceil(c.maxModelLen / c.blockSize);
  const minKv = seqBlocks * blockBytes;
  const weights = loadsWeights ? m.weights : 0;
  const left = budget.available - weights - m.workspace;
  let kv: number;
  let kvDetail: string;
  if (c.kvCacheBytes !== null) {
    kv = c.kvCacheBytes;
    kvDetail = 'kvCacheBytes';
  } else if (device === 'cpu') {
    // the default: at most 4 GiB, at most maxNumSeqs sequences of maxModelLen, at most what is left; at least one
    const cap = Math.min(DEFAULT_CPU_KV_CACHE_BYTES, c.maxNumSeqs * minKv);
    const fromLeft = Math.floor(Math.max(0, left) / blockBytes) * blockBytes;
    kv = Math.max(minKv, Math.min(cap, fromLeft));
    kvDetail = kv === minKv ? `one sequence of maxModelLen ${c.maxModelLen}` : 'the default budget';
  } else {
    kv = minKv;
    kvDetail = `at least one sequence of maxModelLen ${c.maxModelLen}`;
  }
  const planned = device === 'cpu' || c.kvCacheBytes !== null ? kv : null;
  if (weights + kv + m.workspace <= budget.available) return planned;
  const parts: MemoryPart[] = [
    ...(loadsWeights ? [{ name: 'weights' as const, bytes: weights, detail: layout.dtype }] : []),
    { name: 'KV cache', bytes: kv, detail: kvDetail },
    {
      name: 'workspace',
      bytes: m.workspace,
      detail: `steps of ${c.maxNumBatchedTokens} tokens, ${c.maxNumSeqs} sequences`,
    },
  ];
  const hints: string[] = [];
  if (left > 0) {
    const slots = Math.floor(left / blockBytes) * c.blockSize;
    if (slots >= 2 * c.blockSize && slots < c.maxModelLen)
      hints.push(
        `--max-model-len ${slots} or less (maxModelLen; the KV cache takes ${(m.kvBytesPerSlot / MIB).toFixed(2)} ` +
          'MiB a token)',
      );
    if (c.kvCacheBytes !== null && left >= minKv) hints.push(`--kv-cache-bytes ${left} or less (kvCacheBytes)`);
  }
  // The whole plan again at 16 bits: the KV cache (at least one sequence, or the given bytes) and the workspace
  // shrink with the weights.
  const h = loadsWeights ? m.at16 : null;
  const at16 = h && {
    weights: h.weights,
    total: h.weights + (c.kvCacheBytes ?? seqBlocks * c.blockSize * h.kvBytesPerSlot) + h.workspace,
  };
  throw memoryError(what, device, parts, budget, hints, at16);
}

/** The blocks `planned` bytes hold, or on CUDA by default what gpuMemoryUtilization leaves after a profiling step. */
function kvBlocks(model: LlamaModel, c: EngineConfig, planned: number | null): number {
  const blockBytes = c.blockSize * model.kvBytesPerSlot;
  const minBlocks = Math.ceil(c.maxModelLen / c.blockSize);
  let bytes: number;
  let what: string;
  if (planned !== null || model.device === 'cpu') {
    bytes = planned ?? c.kvCacheBytes ?? DEFAULT_CPU_KV_CACHE_BYTES;
    what = `kvCacheBytes ${bytes}`;
  } else {
    profileStep(model, c);
    const { free, total } = deviceMemory();
    bytes = Math.floor(total * c.gpuMemoryUtilization - (total - free));
    what = `gpuMemoryUtilization ${c.gpuMemoryUtilization} leaves ${bytes} bytes after weights and activations`;
  }
  const numBlocks = Math.floor(bytes / blockBytes);
  if (numBlocks < minBlocks)
    throw new RangeError(
      `InferenceEngine: the KV cache holds ${numBlocks} blocks of ${c.blockSize} tokens (${what}); one sequence of ` +
        `maxModelLen ${c.maxModelLen} needs ${minBlocks}. Lower maxModelLen or raise the budget`,
    );
  return numBlocks;
}

/**
 * Runs the largest step shapes once so the activation buffers and attention scratch reach their full size before the
 * free memory is read: a prefill of maxNumBatchedTokens tokens, and a decode of maxNumSeqs sequences of maxModelLen.
 * K/V go nowhere (negative slots) and attention reads a one-block cache; the outputs are thrown away.
 */
function profileStep(model: LlamaModel, c: EngineConfig): void {
  const { device, config } = model;
  const kv = allocateKvCache(model, 1, c.blockSize);
  const ints = (a: ArrayLike<number>, shape = [a.length]) =>
    Tensor.fromArray(Int32Array.from(a), shape, { dtype: 'int32', device });
  const run = (numSeqs: number, queryLen: number, seqLen: number) => {
    const T = numSeqs * queryLen;
    const width = Math.ceil(seqLen / c.blockSize);
    const tensors = [
      ints(new Int32Array(T)),
      ints(Array.from({ length: T }, (_, i) => seqLen - queryLen + (i % queryLen))),
      ints(new Int32Array(T).fill(-1)),
      ints(Array.from({ length: numSeqs + 1 }, (_, s) => s * queryLen)),
      ints(new Int32Array(numSeqs).fill(seqLen)),
      ints(new Int32Array(numSeqs * width), [numSeqs, width]),
      ints(Array.from({ length: numSeqs }, (_, s) => (s + 1) * queryLen - 1)),
    ] as const;
    try {
      model.forward(
        {
          tokenIds: tensors[0],
          positions: tensors[1],
          slotMapping: tensors[2],
          logitsIndices: tensors[6],
          attention: {
            queryStartLoc: tensors[3],
            seqLens: tensors[4],
            blockTables: tensors[5],
            scale: attentionScale(config),
            maxSeqLen: seqLen,
            maxQueryLen: queryLen,
          },
        },
        kv,
      );
      synchronize(device);
    } finally {
      tensors.forEach((t) => t.dispose());
    }
  };
  try {
    const seqs = Math.min(c.maxNumSeqs, c.maxNumBatchedTokens);
    const perSeq = Math.min(c.maxModelLen, Math.ceil(c.maxNumBatchedTokens / seqs));
    run(Math.ceil(c.maxNumBatchedTokens / perSeq), perSeq, perSeq);
    run(seqs, 1, c.maxModelLen);
  } finally {
    disposeKvCache(kv);
  }
}
