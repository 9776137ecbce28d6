// pagedAttention at Llama-3-8B shapes: decode as K/V bandwidth over a batch x context sweep, prefill as FLOP/s.
import { type Device, type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase } from './case.js';
import { ATTN, kvPool, shuffledBlocks } from './kv-pool.js';

/** Sequences of `ctx` tokens each, in shuffled blocks of a pool; `qLen` query tokens per sequence. */
function attentionSetup(
  device: Device,
  dtype: FloatDType,
  seqs: number,
  ctx: number,
  qLen: number,
): { run: () => void; free: () => void } {
  const { heads, headSize, blockSize } = ATTN;
  const perSeq = Math.ceil(ctx / blockSize);
  const { keyCache, valueCache } = kvPool(device, dtype, seqs * perSeq);
  const tokens = seqs * qLen;
  const query = Tensor.full([tokens, heads, headSize], 0.1, { dtype, device });
  const out = Tensor.empty([tokens, heads, headSize], { dtype, device });
  const int = (data: number[], shape: number[]): Tensor => Tensor.fromArray(data, shape, { dtype: 'int32', device });
  const meta = {
    queryStartLoc: int(
      Array.from({ length: seqs + 1 }, (_, i) => i * qLen),
      [seqs + 1],
    ),
    seqLens: int(
      Array.from({ length: seqs }, () => ctx),
      [seqs],
    ),
    blockTables: int(shuffledBlocks(seqs * perSeq), [seqs, perSeq]),
    scale: 1 / Math.sqrt(headSize),
    maxSeqLen: ctx,
    maxQueryLen: qLen,
  };
  return {
    run: () => ops.pagedAttention(out, query, keyCache, valueCache, meta),
    free: () =>
      [keyCache, valueCache, query, out, meta.queryStartLoc, meta.seqLens, meta.blockTables].forEach((t) =>
        t.dispose(),
      ),
  };
}

function decodeAttentionCase(seqs: number, ctx: number, dtype: FloatDType): OpCase {
  const { heads, kvHeads, headSize } = ATTN;
  return {
    op: 'attention decode',
    dtype,
    shape: `${seqs} seq x ${ctx} ctx, ${heads}/${kvHeads}x${headSize}`,
    // every sequence's K and V are read once
    bytes: 2 * seqs * ctx * kvHeads * headSize * itemSize(dtype),
    flops: 4 * seqs * ctx * heads * headSize,
    limit: 'bytes',
    setup: (device) => attentionSetup(device, dtype, seqs, ctx, 1),
  };
}

function prefillAttentionCase(seqs: number, len: number, dtype: FloatDType): OpCase {
  const { heads, kvHeads, headSize } = ATTN;
  return {
    op: 'attention prefill',
    dtype,
    shape: `${seqs} x ${len}-token prompt, ${heads}/${kvHeads}x${headSize}`,
    bytes: 2 * seqs * len * kvHeads * headSize * itemSize(dtype),
    // causal: q·k and p·v over len (len + 1) / 2 pairs per head
    flops: 4 * seqs * heads * headSize * ((len * (len + 1)) / 2),
    limit: 'flops',
    setup: (device) => attentionSetup(device, dtype, seqs, len, len),
  };
}

export const cases: CaseList = (quick, device) => {
  const decode: [number, number][] =
    device === 'cuda'
      ? [
          [1, 2048],
          [32, 1024],
          [64, 4096],
        ]
      : quick
        ? [[1, 2048]]
        : [
            [1, 2048],
            [8, 1024],
            [16, 4096],
          ];
  const prefill: [number, number][] =
    device === 'cuda'
      ? [
          [1, 4096],
          [8, 1024],
        ]
      : quick
        ? [[1, 256]]
        : [
            [1, 512],
            [4, 256],
          ];
  const dtypes: FloatDType[] = quick
    ? ['float32']
    : device === 'cuda'
      ? ['float16', 'bfloat16']
      : ['float32', 'bfloat16'];
  return dtypes.flatMap((dtype) => [
    ...decode.map(([seqs, ctx]) => decodeAttentionCase(seqs, ctx, dtype)),
    ...prefill.map(([seqs, len]) => prefillAttentionCase(seqs, len, dtype)),
  ]);
};
