import { native } from '../native.js';
import type { Tensor } from '../tensor.js';
import { tensorArg } from './args.js';

/**
 * out = a + b, elementwise in fp32, rounded to the dtype (a residual connection where no RMSNorm follows).
 * All [numTokens, hidden] of one dtype; out may be a or b.
 */
export function add(out: Tensor, a: Tensor, b: Tensor): void {
  native.add(tensorArg(out, 'add', 'out'), tensorArg(a, 'add', 'a'), tensorArg(b, 'add', 'b'));
}
