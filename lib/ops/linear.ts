// Linear layers: our own GEMV (decode batches) and GEMM (prefill) kernels.
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
