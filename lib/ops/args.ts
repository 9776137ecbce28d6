import { Tensor, describeValue } from '../tensor.js';

/** The Tensor check every op makes before the addon checks shapes, dtypes and devices. */
export function tensorArg(v: unknown, op: string, name: string): Tensor {
  if (!(v instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor, got ${describeValue(v)}`);
  return v;
}
