import { native } from '../native.js';
import type { Tensor } from '../tensor.js';
import { tensorArg } from './args.js';

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
  const op = 'linear';
  native.linear(
    tensorArg(out, op, 'out'),
    tensorArg(x, op, 'x'),
    tensorArg(weight, op, 'weight'),
    bias === null || bias === undefined ? null : tensorArg(bias, op, 'bias'),
  );
}
