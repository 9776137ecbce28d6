// The forms a model's weight takes: a float Tensor, a QuantizedTensor (lib/quant), a float weight packed for the CPU
// GEMM (PackedWeight), a Q4_0 / Q8_0 / Q4_K / Q6_K weight
// interleaved for the CPU's GEMV (PackedQuantWeight), or a stack of
// them (a fused projection whose parts a K-quant mix typed apart); and the linear layer and embedding over any form.
import * as plainOps from '../ops/index.js';
import { packLinearWeight } from '../ops/linear.js';
import { packQuantWeight } from '../ops/quant.js';
import type { Ops } from '../ops/profiled.js';
import { QUANT_FORMATS, type QuantType } from '../quant/formats.js';
import { QuantizedTensor } from '../quant/tensor.js';
import { Tensor } from '../tensor.js';

/**
 * A float weight packed once for the CPU GEMM (packLinearWeight: panels of 16 output features, k-major), so that
 * every call streams it in order instead of transposing it. A tied embedding is read through it too (embeddingPacked).
 */
export class PackedWeight {
  /** [ceil(rows / 16), cols, 16], the weight's dtype. */
  readonly data: Tensor;
  /** [rows, cols]: the logical shape. */
  readonly shape: readonly [number, number];

  private constructor(data: Tensor, rows: number) {
    this.data = data;
    this.shape = [rows, data.shape[1]!];
  }

  /** Packs a CPU weight [rows, cols] (the caller may dispose it after). */
  static pack(weight: Tensor): PackedWeight {
    const [rows, cols] = weight.shape as [number, number];
    const data = Tensor.empty([Math.ceil(rows / 16), cols, 16], { dtype: weight.dtype, device: weight.device });
    try {
      packLinearWeight(data, weight);
    } catch (e) {
      data.dispose();
      throw e;
    }
    return new PackedWeight(data, rows);
  }

  /** Bytes in memory (the weight's, plus its rows padded to whole panels of 16). */
  get byteLength(): number {
    return this.data.byteLength;
  }

  dispose(): void {
    this.data.dispose();
  }
}

/**
 * A quantised weight interleaved once for the CPU's integer GEMV (packQuantWeight: 8 rows a stream), for the types
 * that have such a layout (Q4_0, Q8_0, Q4_K, Q6_K) and row counts that are whole groups of 8. A tied embedding is read
 * through it too (quantEmbeddingPacked).
 */
export class PackedQuantWeight {
  /** int32 [rows, rowWords]: the weight's bytes, reordered within each group of 8 rows. */
  readonly data: Tensor;
  readonly type: QuantType;
  readonly shape: readonly [number, number];

  private constructor(data: Tensor, type: QuantType, cols: number) {
    this.data = data;
    this.type = type;
    this.shape = [data.shape[0]!, cols];
  }

  /** Whether a CPU weight of `type` with `rows` rows can be interleaved. */
  static packs(type: QuantType, rows: number): boolean {
    return (type === 'Q4_0' || type === 'Q8_0' || type === 'Q4_K' || type === 'Q6_K') && rows % 8 === 0;
  }

  /** Interleaves a CPU weight (the caller may dispose it after). */
  static pack(weight: QuantizedTensor): PackedQuantWeight {
    const data = Tensor.empty(weight.data.shape, { dtype: 'int32', device: weight.device });
    try {
      packQuantWeight(data, weight.data, QUANT_FORMATS[weight.type].id);
    } catch (e) {
      data.dispose();
      throw e;
    }
    return new PackedQuantWeight(data, weight.type, weight.shape[1]);
  }

  /** Bytes in memory: the QuantizedTensor's. */
  get byteLength(): number {
    return this.data.byteLength;
  }

  dispose(): void {
    this.data.dispose();
  }
}

/** A fused projection whose parts have different types: each part fills its rows of the output. */
export interface StackedWeight {
  parts: readonly (Tensor | QuantizedTensor | PackedQuantWeight)[];
}

export type LinearWeight = Tensor | QuantizedTensor | PackedWeight | PackedQuantWeight | StackedWeight;

/** out = x · Wᵀ (+ bias) for any weight form, through `ops` (opsWith(profiler) to time it). */
export function linearAny(
  out: Tensor,
  x: Tensor,
  w: LinearWeight,
  ops: Ops = plainOps,
  bias: Tensor | null = null,
): void {
  if (w instanceof Tensor) return ops.linear(out, x, w, bias);
  if (w instanceof QuantizedTensor) return ops.quantLinear(out, x, w.data, QUANT_FORMATS[w.type].id, bias);
  if (w instanceof PackedWeight) return ops.linearPacked(out, x, w.data, bias);
  if (w instanceof PackedQuantWeight) return ops.quantLinearPacked(out, x, w.data, QUANT_FORMATS[w.type].id, bias);
  let col = 0;
  for (const p of w.parts) {
    const rows = p.shape[0];
    linearAny(out.narrow(1, col, rows), x, p, ops, bias?.narrow(0, col, rows) ?? null);
    col += rows;
  }
}

/** A table an embedding reads: float, quantised, or packed as the classifier's weight (a tied embedding, CPU). */
export type EmbeddingTable = Tensor | QuantizedTensor | PackedWeight | PackedQuantWeight;

/** out[i] = table[ids[i]] for any table, through `ops`. */
export function embeddingAny(out: Tensor, ids: Tensor, table: EmbeddingTable, ops: Ops = plainOps): void {
  if (table instanceof Tensor) ops.embedding(out, ids, table);
  else if (table instanceof PackedWeight) ops.embeddingPacked(out, ids, table.data, table.shape[0]);
  else if (table instanceof PackedQuantWeight)
    ops.quantEmbeddingPacked(out, ids, table.data, QUANT_FORMATS[table.type].id);
  else ops.quantEmbedding(out, ids, table.data, QUANT_FORMATS[table.type].id);
}

export function disposeWeight(w: LinearWeight): void {
  if ('parts' in w) w.parts.forEach((p) => p.dispose());
  else w.dispose();
}

export function weightBytes(w: LinearWeight): number {
  return 'parts' in w ? w.parts.reduce((s, p) => s + p.byteLength, 0) : w.byteLength;
}
