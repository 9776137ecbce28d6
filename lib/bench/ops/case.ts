// One benchmark case of an op: what lib/bench/ops.bench.ts times. Each lib/bench/ops/<family>.bench.ts exports the
// cases of its family's ops as `cases(quick, device)`.
import type { Device } from '../../dtype.js';

/**
 * Which physical limit a case is compared with: the read bandwidth, the FMA peak, or the roofline (the slower of the
 * two for its bytes and FLOPs: a batched decode GEMV sits near both).
 */
export type Limit = 'bytes' | 'flops' | 'roofline';

export interface OpCase {
  op: string;
  /** storage dtype; "x/w y" for activations x with weights y */
  dtype: string;
  shape: string;
  /** bytes read + written by one call (for attention: the K/V read) */
  bytes: number;
  /** floating-point operations of one call, where compute is the limit (GEMM, prefill attention) */
  flops?: number;
  /** makes the tensors, returns the call and a cleanup */
  setup: (device: Device) => { run: () => void; free: () => void };
  /** default 'bytes' */
  limit?: Limit;
}

/** A family's cases at this size (quick: a few, float32) for this device. */
export type CaseList = (quick: boolean, device: Device) => OpCase[];

/** The storage dtypes a family is benchmarked in. */
export const dtypesFor = (quick: boolean) =>
  quick ? (['float32'] as const) : (['float32', 'float16', 'bfloat16'] as const);
