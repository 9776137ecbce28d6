import { Tensor } from '../tensor.js';

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
}

/** The Tensor check every op makes before the addon checks shapes, dtypes and devices. */
export function tensorArg(v: unknown, op: string, name: string): Tensor {
  if (!(v instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor, got ${describe(v)}`);
  return v;
}
