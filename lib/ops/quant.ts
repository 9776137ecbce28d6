// Quantised weights (GGUF's block types): the linear layer and the embedding, dequantising as they read. The weight
// is an int32 tensor [rows, rowWords] holding each row's ggml blocks padded to whole words (lib/quant/tensor.ts
// builds it); `type` is ggml's type id (lib/quant/formats.ts). On the CPU, a Q4_0, Q8_0, Q4_K or Q6_K weight may be
// interleaved once (packQuantWeight) for the decode GEMV, and read by quantLinearPacked and quantEmbeddingPacked.
import { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('quant', {
  quantLinear: [
    'out: float[numTokens, outFeatures], x: float[numTokens, inFeatures], weight: int32[outFeatures, rowWords], ' +
      'type: positiveInteger, bias?: float[outFeatures]',
    (device) => [...zeros(device, [3, 24], [3, 32]), Tensor.zeros([24, 9], { dtype: 'int32', device }), 8, null],
  ],
  quantEmbedding: [
    'out: anyFloat[numTokens, hidden], ids: int32[numTokens], table: int32[vocab, rowWords], type: positiveInteger',
    (device) => [
      ...zeros(device, [2, 32]),
      Tensor.zeros([2], { dtype: 'int32', device }),
      Tensor.zeros([5, 5], { dtype: 'int32', device }),
      2,
    ],
  ],
});

/**
 * A linear layer with a quantised weight: out = x · dequant(weight)ᵀ (+ bias), accumulated in fp32 and rounded once to
 * out's dtype.
 *
 * @param out    [numTokens, outFeatures], x's dtype, written (rows may be strided)
 * @param x      [numTokens, inFeatures] (rows may be strided); inFeatures a multiple of the type's block (32 or 256)
 * @param weight int32 [outFeatures, rowWords]: each row's blocks, padded to whole words
 * @param type   ggml's type id: Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q4_K 12, Q5_K 13, Q6_K 14
 * @param bias   [outFeatures] in out's dtype, or null
 */
export function quantLinear(out: Tensor, x: Tensor, weight: Tensor, type: number, bias: Tensor | null = null): void {
  runOp(OPS.quantLinear, [out, x, weight, type, bias]);
}

/**
 * The embedding of a quantised table: out[i] = dequant(table[ids[i]]).
 *
 * @param out   [numTokens, hidden], any float dtype, written
 * @param ids   int32 [numTokens], each in [0, vocab) (on CUDA a bad id is a RangeError at the next synchronize)
 * @param table int32 [vocab, rowWords]: each row's blocks of `hidden` values, padded to whole words
 * @param type  ggml's type id, as quantLinear
 */
export function quantEmbedding(out: Tensor, ids: Tensor, table: Tensor, type: number): void {
  runOp(OPS.quantEmbedding, [out, ids, table, type]);
}

const PACKED = defineOps(
  'quant',
  {
    packQuantWeight: [
      'packed: int32[rows, rowWords], weight: int32[rows, rowWords], type: positiveInteger',
      (device) => [
        Tensor.zeros([8, 9], { dtype: 'int32', device }),
        Tensor.zeros([8, 9], { dtype: 'int32', device }),
        2,
      ],
    ],
    quantLinearPacked: [
      'out: float[numTokens, outFeatures], x: float[numTokens, inFeatures], packed: int32[outFeatures, rowWords], ' +
        'type: positiveInteger, bias?: float[outFeatures]',
      (device) => [...zeros(device, [3, 8], [3, 64]), Tensor.zeros([8, 9], { dtype: 'int32', device }), 2, null],
    ],
    quantEmbeddingPacked: [
      'out: anyFloat[numTokens, hidden], ids: int32[numTokens], table: int32[vocab, rowWords], type: positiveInteger',
      (device) => [
        ...zeros(device, [2, 32]),
        Tensor.zeros([2], { dtype: 'int32', device }),
        Tensor.zeros([8, 5], { dtype: 'int32', device }),
        2,
      ],
    ],
  },
  ['cpu'],
);

/**
 * Interleaves a Q4_0, Q8_0, Q4_K or Q6_K weight's rows by 8 for {@link quantLinearPacked} (CPU): per block, the 8
 * rows' scales, then 4 bytes of each row's values at a time, so that the decode GEMV reads 8 rows as one stream and
 * serves them with one vector (csrc/cpu/quant_x8_layout.h gives the layout bit by bit).
 *
 * @param packed int32 [rows, rowWords], dense, written: weight's bits, reordered within each group of 8 rows
 * @param weight int32 [rows, rowWords], dense: rows as quantLinear reads them; rows a multiple of 8
 * @param type   ggml's type id: Q4_0 (2), Q8_0 (8), Q4_K (12) or Q6_K (14), the types interleaved
 */
export function packQuantWeight(packed: Tensor, weight: Tensor, type: number): void {
  runOp(PACKED.packQuantWeight, [packed, weight, type]);
}

/**
 * {@link quantLinear} over a weight interleaved by {@link packQuantWeight} (CPU): the same result within the same
 * bounds.
 *
 * @param out    [numTokens, outFeatures], x's dtype, written (rows may be strided)
 * @param x      [numTokens, inFeatures] (rows may be strided); inFeatures a multiple of the type's block
 * @param packed int32 [outFeatures, rowWords], dense, from packQuantWeight; outFeatures a multiple of 8
 * @param type   Q4_0 (2), Q8_0 (8), Q4_K (12) or Q6_K (14)
 * @param bias   [outFeatures] in out's dtype, or null
 */
export function quantLinearPacked(
  out: Tensor,
  x: Tensor,
  packed: Tensor,
  type: number,
  bias: Tensor | null = null,
): void {
  runOp(PACKED.quantLinearPacked, [out, x, packed, type, bias]);
}

/**
 * {@link quantEmbedding} over a table interleaved by {@link packQuantWeight} (CPU): the same rows, bit for bit (a
 * tied embedding interleaved for the classifier's GEMV).
 *
 * @param out   [numTokens, hidden], any float dtype, written
 * @param ids   int32 [numTokens], each in [0, vocab)
 * @param table int32 [vocab, rowWords], dense, from packQuantWeight; vocab a multiple of 8
 * @param type  Q4_0 (2), Q8_0 (8), Q4_K (12) or Q6_K (14)
 */
export function quantEmbeddingPacked(out: Tensor, ids: Tensor, table: Tensor, type: number): void {
  runOp(PACKED.quantEmbeddingPacked, [out, ids, table, type]);
}
