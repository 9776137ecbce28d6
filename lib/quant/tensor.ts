// A quantised weight on a device: ggml blocks, each row padded to whole int32 words, and its type. The forms a
// model's weights take (this, a Tensor, a packed float weight, a stack) and the ops over any of them:
// lib/model/linear-weight.ts.
import type { Device } from '../dtype.js';
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
