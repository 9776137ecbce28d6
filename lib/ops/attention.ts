// Paged attention over the KV cache: one varlen op for prefill, decode, chunked prefill and prefix-cache hits.
import type { Device } from '../dtype.js';
import { Tensor } from '../tensor.js';
import { KV_POOL } from './cache.js';
import { defineOps, runOp, zeros } from './registry.js';

/** Two sequences decoding one token each, over a block apiece: pagedAttention's example call. */
function twoDecodes(device: Device): unknown[] {
  const int = (a: number[], shape: number[]) => Tensor.fromArray(a, shape, { dtype: 'int32', device });
  const meta: AttentionMetadata = {
    queryStartLoc: int([0, 1, 2], [3]),
    seqLens: int([3, 5], [2]),
    blockTables: int([0, 1], [2, 1]),
    scale: 1 / Math.sqrt(8),
    maxSeqLen: 5,
    maxQueryLen: 1,
  };
  return [...zeros(device, [2, 4, 8], [2, 4, 8], [4, 16, 2, 8], [4, 16, 2, 8]), meta];
}

const OPS = defineOps('attention', {
  pagedAttention: [
    `out: float[numTokens, numHeads, headSize], query: float[numTokens, numHeads, headSize], keyCache: ${KV_POOL}, ` +
      `valueCache: ${KV_POOL}, ` +
      'meta: {queryStartLoc, seqLens, blockTables, scale, maxSeqLen, maxQueryLen, slidingWindow, logitsSoftCap}',
    twoDecodes,
  ],
});

/** One step's attention metadata; the tensors are int32 and live on the op's device. */
export interface AttentionMetadata {
  /** [numSeqs + 1]: sequence s owns query tokens queryStartLoc[s] .. queryStartLoc[s+1] - 1 */
  queryStartLoc: Tensor;
  /** [numSeqs]: context length of each sequence, this step's tokens included */
  seqLens: Tensor;
  /** [numSeqs, maxBlocksPerSeq]: the cache blocks of each sequence, in order */
  blockTables: Tensor;
  /** softmax scale, usually 1 / sqrt(headSize) */
  scale: number;
  /** the longest seqLens entry, if known (sizes the CUDA split-KV grid; a longer sequence is an error) */
  maxSeqLen?: number;
  /** the most query tokens of one sequence, if known (sizes the CUDA prefill grid; more is an error) */
  maxQueryLen?: number;
  /**
   * A sliding window (Mistral, Gemma 2/3, Phi-3, Qwen2's use_sliding_window): a query token at position p sees the keys
   * at p - slidingWindow + 1 .. p only, and no cache slot before the window is read. 0 or absent: the whole context.
   */
  slidingWindow?: number;
  /** Gemma 2's attention soft-capping: scores (scale applied) become cap · tanh(score / cap). 0 or absent: none. */
  logitsSoftCap?: number;
}

/**
 * Causal attention of every query token over its sequence's K/V in the paged cache (varlen: one call serves
 * decode, prefill, chunked prefill and prefix-cache hits, mixed in one batch).
 *
 * Query token j of sequence s sits at position `seqLens[s] - qLen_s + j` (qLen_s its number of query tokens)
 * and attends to cache positions 0 .. that position. Query head h reads KV head `h / (numHeads / numKvHeads)`
 * (GQA). The softmax is online, in fp32; no cache slot at or past seqLens is read.
 *
 * @param out        [numTokens, numHeads, headSize], written
 * @param query      [numTokens, numHeads, headSize] (heads may be strided)
 * @param keyCache   [numBlocks, blockSize, numKvHeads, headSize]; headSize a multiple of 8, at most 256
 * @param valueCache same shape as keyCache
 */
export function pagedAttention(
  out: Tensor,
  query: Tensor,
  keyCache: Tensor,
  valueCache: Tensor,
  meta: AttentionMetadata,
): void {
  runOp(OPS.pagedAttention, [out, query, keyCache, valueCache, meta]);
}
