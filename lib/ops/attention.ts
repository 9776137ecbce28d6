import { native } from '../native.js';
import type { Tensor } from '../tensor.js';
import { describeValue } from '../tensor.js';
import { tensorArg } from './args.js';

/**
 * Writes a step's new keys and values into the paged KV cache: token t goes to slot `slotMapping[t]`, that is
 * block `slot / blockSize`, offset `slot % blockSize`. A negative slot is padding and is skipped.
 *
 * @param key         [numTokens, numKvHeads, headSize] (heads may be strided, e.g. a view of a fused qkv row)
 * @param value       [numTokens, numKvHeads, headSize]
 * @param keyCache    [numBlocks, blockSize, numKvHeads, headSize], written
 * @param valueCache  [numBlocks, blockSize, numKvHeads, headSize], written
 * @param slotMapping int32 [numTokens]
 *
 * A slot past the cache is a RangeError: on the CPU before anything is written; on CUDA those tokens are
 * skipped and the next synchronize throws.
 */
export function reshapeAndCache(key: Tensor, value: Tensor, keyCache: Tensor, valueCache: Tensor, slotMapping: Tensor): void {
  const op = 'reshapeAndCache';
  native.reshapeAndCache(
    tensorArg(key, op, 'key'),
    tensorArg(value, op, 'value'),
    tensorArg(keyCache, op, 'keyCache'),
    tensorArg(valueCache, op, 'valueCache'),
    tensorArg(slotMapping, op, 'slotMapping'),
  );
}

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
}

function hint(v: unknown, name: string): number {
  if (v === undefined || v === null) return -1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw new RangeError(`pagedAttention: meta.${name} must be a non-negative integer, got ${describeValue(v)}`);
  return v;
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
export function pagedAttention(out: Tensor, query: Tensor, keyCache: Tensor, valueCache: Tensor, meta: AttentionMetadata): void {
  const op = 'pagedAttention';
  if (typeof meta !== 'object' || meta === null) throw new TypeError(`${op}: meta must be an object, got ${describeValue(meta)}`);
  if (typeof meta.scale !== 'number') throw new TypeError(`${op}: meta.scale must be a number, got ${describeValue(meta.scale)}`);
  native.pagedAttention(
    tensorArg(out, op, 'out'),
    tensorArg(query, op, 'query'),
    tensorArg(keyCache, op, 'keyCache'),
    tensorArg(valueCache, op, 'valueCache'),
    tensorArg(meta.queryStartLoc, op, 'meta.queryStartLoc'),
    tensorArg(meta.seqLens, op, 'meta.seqLens'),
    tensorArg(meta.blockTables, op, 'meta.blockTables'),
    meta.scale,
    hint(meta.maxSeqLen, 'maxSeqLen'),
    hint(meta.maxQueryLen, 'maxQueryLen'),
  );
}
