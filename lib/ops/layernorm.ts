import { native } from '../native.js';
import type { Tensor } from '../tensor.js';
import { tensorArg } from './args.js';

/**
 * out = x / sqrt(mean(x²) + eps) * weight, per row. The normalised value is rounded to the storage dtype before
 * the weight multiplies it (as vLLM does).
 *
 * @param out    [numTokens, hidden], written
 * @param x      [numTokens, hidden] (rows may be strided; may be `out` itself)
 * @param weight [hidden]
 */
export function rmsNorm(out: Tensor, x: Tensor, weight: Tensor, eps: number): void {
  native.rmsNorm(tensorArg(out, 'rmsNorm', 'out'), tensorArg(x, 'rmsNorm', 'x'), tensorArg(weight, 'rmsNorm', 'weight'), eps);
}

/**
 * In place: residual = x + residual (rounded to the dtype); x = rmsNorm(residual, weight, eps).
 *
 * @param x        [numTokens, hidden], overwritten with the normalised sum
 * @param residual [numTokens, hidden], overwritten with the sum
 * @param weight   [hidden]
 */
export function fusedAddRmsNorm(x: Tensor, residual: Tensor, weight: Tensor, eps: number): void {
  native.fusedAddRmsNorm(
    tensorArg(x, 'fusedAddRmsNorm', 'x'),
    tensorArg(residual, 'fusedAddRmsNorm', 'residual'),
    tensorArg(weight, 'fusedAddRmsNorm', 'weight'),
    eps,
  );
}
