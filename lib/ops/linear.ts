// Linear layers: our own GEMV (decode batches) and GEMM (prefill) kernels; on the CPU, also over a weight packed once
// into the GEMM's panels (packLinearWeight), which the CPU model uses.
import { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('linear', {
  linear: [
    'out: float[numTokens, outFeatures], x: float[numTokens, inFeatures], ' +
      'weight: anyFloat[outFeatures, inFeatures], bias?: float[outFeatures]',
    (device) => [
      ...zeros(device, [3, 24], [3, 16]),
      Tensor.zeros([24, 16], { dtype: 'bfloat16', device }),
      ...zeros(device, [24]),
    ],
  ],
});

/**
 * A linear layer: out = x · weightᵀ (+ bias), accumulated in fp32 and rounded once to out's dtype.
 *
 * @param out    [numTokens, outFeatures], x's dtype, written (rows may be strided)
 * @param x      [numTokens, inFeatures] (rows may be strided)
 * @param weight [outFeatures, inFeatures] (Hugging Face layout), dense; float32, float16 or bfloat16 whatever
 *               x's dtype is (converted in registers)
 * @param bias   [outFeatures] in out's dtype, or null
 */
export function linear(out: Tensor, x: Tensor, weight: Tensor, bias: Tensor | null = null): void {
  runOp(OPS.linear, [out, x, weight, bias]);
}

const PACKED = defineOps(
  'linear',
  {
    packLinearWeight: [
      'packed: anyFloat[numPanels, inFeatures, 16], weight: anyFloat[outFeatures, inFeatures]',
      (device) => [Tensor.zeros([2, 16, 16], { device }), Tensor.zeros([32, 16], { device })],
    ],
    linearPacked: [
      'out: float[numTokens, outFeatures], x: float[numTokens, inFeatures], ' +
        'packed: anyFloat[numPanels, inFeatures, 16], bias?: float[outFeatures]',
      (device) => [
        ...zeros(device, [3, 32], [3, 16]),
        Tensor.zeros([2, 16, 16], { dtype: 'bfloat16', device }),
        ...zeros(device, [32]),
      ],
    ],
  },
  ['cpu'],
);

/**
 * Packs a linear weight for {@link linearPacked} (CPU): panels of 16 output features, k-major, the layout the CPU
 * GEMM's micro-kernel reads, so that each call streams the weight in order instead of transposing it.
 *
 * @param packed [ceil(outFeatures / 16), inFeatures, 16], weight's dtype, dense, written:
 *               packed[p][k][j] = weight[16p + j][k], zero past outFeatures
 * @param weight [outFeatures, inFeatures] (Hugging Face layout), dense, float32, float16 or bfloat16
 */
export function packLinearWeight(packed: Tensor, weight: Tensor): void {
  runOp(PACKED.packLinearWeight, [packed, weight]);
}

/**
 * {@link linear} over a weight packed by {@link packLinearWeight} (CPU): the same result, out's width giving
 * outFeatures.
 *
 * @param out    [numTokens, outFeatures], x's dtype, written (rows may be strided)
 * @param x      [numTokens, inFeatures] (rows may be strided)
 * @param packed [ceil(outFeatures / 16), inFeatures, 16], any float dtype
 * @param bias   [outFeatures] in out's dtype, or null
 */
export function linearPacked(out: Tensor, x: Tensor, packed: Tensor, bias: Tensor | null = null): void {
  runOp(PACKED.linearPacked, [out, x, packed, bias]);
}
