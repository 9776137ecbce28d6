#!/usr/bin/env node
// The split-KV scratch a decode step takes when the context bound is maxModelLen = 131072 (what a decode graph is
// captured with): batch 256, 32 query heads over 32 KV heads (Llama 2 7B), head size 128, bf16. Measured as the device
// memory the first pagedAttention call leaves allocated (the scratch is kept for later calls), on whichever CUDA
// backend MINI_VLLM_ADDON loads (the emulated device here: the bytes are the same as a GPU's, the time is not).
//
//   MINI_VLLM_ADDON=build-emu/Release/mini_vllm.node node bench/scripts/decode-scratch.mjs [kvHeads]
import { performance } from 'node:perf_hooks';
import { Tensor, backends, deviceMemory, ops, synchronize } from '../../dist/lib/index.js';
import { scriptArgs } from './args.mjs';

const ARGS = scriptArgs(
  `usage: MINI_VLLM_ADDON=build-emu/Release/mini_vllm.node node bench/scripts/decode-scratch.mjs [KV_HEADS]
  The split-KV scratch of a decode step at maxModelLen 131072, batch 256, 32 query heads over KV_HEADS (default 32).`,
  { allowPositionals: true },
);

const cuda = backends().cuda;
if (!cuda.available) {
  console.error('decode-scratch: no CUDA device (set MINI_VLLM_ADDON to an emulated build)');
  process.exit(1);
}
const batch = 256,
  heads = 32,
  kvHeads = Number(ARGS.positionals[0] ?? 32),
  headSize = 128,
  blockSize = 16;
const maxModelLen = 131072,
  width = maxModelLen / blockSize;
const opts = { dtype: 'bfloat16', device: 'cuda' };
const ints = (a, shape) =>
  Tensor.fromArray(Int32Array.from(a), shape ?? [a.length], { dtype: 'int32', device: 'cuda' });
const query = Tensor.zeros([batch, heads, headSize], opts);
const out = Tensor.empty([batch, heads, headSize], opts);
const key = Tensor.zeros([4, blockSize, kvHeads, headSize], opts);
const value = Tensor.zeros([4, blockSize, kvHeads, headSize], opts);
// Every sequence is 100 tokens long in block 0..6 of the pool; the tables are as wide as maxModelLen needs.
const meta = {
  queryStartLoc: ints(Array.from({ length: batch + 1 }, (_, i) => i)),
  seqLens: ints(new Array(batch).fill(40)),
  blockTables: ints(
    new Int32Array(batch * width).map((_, i) => (i % width) % 4),
    [batch, width],
  ),
  scale: 1 / Math.sqrt(headSize),
  maxSeqLen: maxModelLen,
  maxQueryLen: 1,
};
synchronize();
const before = deviceMemory(0).free;
const t0 = performance.now();
ops.pagedAttention(out, query, key, value, meta);
synchronize();
const ms = performance.now() - t0;
const scratch = before - deviceMemory(0).free;
console.log(
  JSON.stringify({
    device: cuda.devices[0].name,
    batch,
    heads,
    kvHeads,
    headSize,
    maxSeqLen: maxModelLen,
    scratchBytes: scratch,
    scratchMiB: +(scratch / 2 ** 20).toFixed(1),
    firstCallMs: +ms.toFixed(0),
  }),
);
