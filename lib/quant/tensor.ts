// A quantised weight on a device: ggml blocks, each row padded to whole int32 words, and its type. Linear layers and
// the embedding take it, or a Tensor, or a stack of both (a fused projection whose parts a K-quant mix typed apart);
// linear layers on the CPU also take a float weight packed for the CPU GEMM (PackedWeight).
import type { Device } from '../dtype.js';
import { quantEmbedding, quantLinear } from '../ops/quant.js';
import { embedding } from '../ops/embedding.js';
import { linear, linearPacked, packLinearWeight } from '../ops/linear.js';
import { Tensor } from '../tensor.js';
import { dequantizeRows, QUANT_FORMATS, type QuantType, quantRowBytes, quantRowWords } from './formats.js';

export class QuantizedTensor {
  /** int32 [rows, rowWords]. */
  readonly data: Tensor;
  readonly type: QuantType;
  /** [rows, cols]: the logical shape. */
  readonly shape: readonly [number, number];

  constructor(type: QuantType, cols: number, data: Tensor) {
    if (cols % QUANT_FORMATS[type].block !== 0)
      throw new RangeError(`QuantizedTensor: ${cols} values a row is not a multiple of ${type}'s block`);
    if (data.dtype !== 'int32' || data.shape.length !== 2 || data.shape[1] !== quantRowWords(type, cols))
      throw new RangeError(`QuantizedTensor: data must be int32 [rows, ${quantRowWords(type, cols)}]`);
    this.type = type;
    this.data = data;
    this.shape = [data.shape[0]!, cols];
  }

  /** Empty storage for rows x cols of `type` on `device`. */
  static empty(type: QuantType, rows: number, cols: number, device: Device): QuantizedTensor {
    return new QuantizedTensor(type, cols, Tensor.empty([rows, quantRowWords(type, cols)], { dtype: 'int32', device }));
  }

  get device(): Device {
    return this.data.device;
  }

  /** Bytes in memory (the file's quantised size plus at most 3 bytes a row). */
  get byteLength(): number {
    return this.data.byteLength;
  }

  /** Rows [row, row + n) of it (a view). */
  narrow(row: number, n: number): QuantizedTensor {
    return new QuantizedTensor(this.type, this.shape[1], this.data.narrow(0, row, n));
  }

  /** Writes rows [row, row + n) from ggml's contiguous rows (n x rowBytes). */
  writeRows(row: number, n: number, bytes: Uint8Array): void {
    const rowBytes = quantRowBytes(this.type, this.shape[1]);
    const words = this.data.shape[1]!;
    if (bytes.byteLength !== n * rowBytes)
      throw new RangeError(`QuantizedTensor.writeRows: ${bytes.byteLength} bytes for ${n} rows of ${rowBytes}`);
    const padded = new Int32Array(n * words);
    const dst = new Uint8Array(padded.buffer);
    if (words * 4 === rowBytes) dst.set(bytes);
    else for (let r = 0; r < n; ++r) dst.set(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), r * words * 4);
    this.data.narrow(0, row, n).write(padded);
  }

  /** The values as float32 [rows * cols] (the reference dequantiser; for tests and tools). */
  dequantize(): Float32Array {
    const [rows, cols] = this.shape;
    const words = this.data.toArray() as Int32Array;
    const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
    return dequantizeRows(this.type, bytes, 0, this.data.shape[1]! * 4, rows, cols);
  }

  dispose(): void {
    this.data.dispose();
  }
}

/**
 * A float weight packed once for the CPU GEMM (packLinearWeight: panels of 16 output features, k-major), so that
 * every call streams it in order instead of transposing it.
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

/** A fused projection whose parts have different types: each part fills its rows of the output. */
export interface StackedWeight {
  parts: readonly (Tensor | QuantizedTensor)[];
}

export type LinearWeight = Tensor | QuantizedTensor | PackedWeight | StackedWeight;

/** out = x · Wᵀ for any weight form. */
export function linearAny(out: Tensor, x: Tensor, w: LinearWeight): void {
  if (w instanceof Tensor) return linear(out, x, w);
  if (w instanceof QuantizedTensor) return quantLinear(out, x, w.data, QUANT_FORMATS[w.type].id);
  if (w instanceof PackedWeight) return linearPacked(out, x, w.data);
  let col = 0;
  for (const p of w.parts) {
    const rows = p.shape[0];
    linearAny(out.narrow(1, col, rows), x, p);
    col += rows;
  }
}

/** out[i] = table[ids[i]] for a float or quantised table. */
export function embeddingAny(out: Tensor, ids: Tensor, table: Tensor | QuantizedTensor): void {
  if (table instanceof Tensor) embedding(out, ids, table);
  else quantEmbedding(out, ids, table.data, QUANT_FORMATS[table.type].id);
}

export function disposeWeight(w: LinearWeight): void {
  if ('parts' in w) w.parts.forEach((p) => p.dispose());
  else w.dispose();
}

export function weightBytes(w: LinearWeight): number {
  return 'parts' in w ? w.parts.reduce((s, p) => s + p.byteLength, 0) : w.byteLength;
}
