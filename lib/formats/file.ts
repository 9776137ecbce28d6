// Bounds-checked reads from model files by offset (never the whole file into memory), and the 16-bit float
// conversions the loaders need.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { MiniVllmError, ModelFormatError } from '../errors.js';
import { badScale, isQuantType, quantRowBytes } from '../quant/formats.js';
import type { QuantType } from '../quant/formats.js';
import type { Tensor } from '../tensor.js';

/** A model file's tensors under Hugging Face names (`model.layers.0.self_attn.q_proj.weight`, ...). */
export interface WeightSource {
  /** What errors name: the file (or directory) the tensors come from. */
  readonly file: string;
  has(name: string): boolean;
  /** Row-major shape, outermost first (a GGUF's ne[] reversed). */
  shape(name: string): readonly number[];
  /** Rows [row, row + rows) of the tensor (viewed as [shape[0], rest]) as float32. */
  read(name: string, row: number, rows: number): Float32Array;
  /** Writes the whole tensor straight into `dst` on its device instead (generated weights), if the source can. */
  fill?(name: string, dst: Tensor): void;
  /** The tensor's quantised block type, if it is stored quantised (a GGUF's); `read` does not read those. */
  quantType?(name: string): QuantType | undefined;
  /** Rows [row, row + rows) of a quantised tensor: its ggml blocks, row after row. */
  readRaw?(name: string, row: number, rows: number): Uint8Array;
  close?(): void;
}

export class BinaryFile {
  readonly path: string;
  readonly size: number;
  private fd: number | null;

  constructor(path: string) {
    this.path = path;
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      throw new ModelFormatError(path, `cannot open: ${(e as Error).message}`);
    }
    this.size = fstatSync(this.fd).size;
  }

  /** Fills `dst` from byte `offset`; `what` names the data in the error when the file is too short. */
  readInto(dst: Uint8Array, offset: number, what: string): void {
    if (this.fd === null) throw new ModelFormatError(this.path, 'the file was closed');
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + dst.byteLength > this.size)
      throw new ModelFormatError(
        this.path,
        `${what} (bytes ${offset}..${offset + dst.byteLength}) lies past the end of the file (${this.size} bytes): ` +
          `truncated?`,
      );
    let done = 0;
    while (done < dst.byteLength) {
      const n = readSync(this.fd, dst, done, dst.byteLength - done, offset + done);
      if (n <= 0) throw new ModelFormatError(this.path, `short read of ${what} at byte ${offset + done}`);
      done += n;
    }
  }

  bytes(offset: number, length: number, what: string): Buffer {
    const b = Buffer.allocUnsafe(length);
    this.readInto(b, offset, what);
    return b;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Opens `path` and parses it; the file is closed again if parsing throws (on success the result owns it). */
export function parseFile<T>(path: string, parse: (file: BinaryFile) => T): T {
  const file = new BinaryFile(path);
  try {
    return parse(file);
  } catch (e) {
    file.close();
    throw e;
  }
}

export type StorageType = 'F32' | 'F16' | 'BF16';

export const STORAGE_BYTES: Record<StorageType, number> = { F32: 4, F16: 2, BF16: 2 };

let f16Table: Float32Array | null = null;

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Reads `count` elements of `type` at `offset` as float32. */
export function readFloats(
  file: BinaryFile,
  offset: number,
  count: number,
  type: StorageType,
  what: string,
): Float32Array {
  const out = new Float32Array(count);
  if (type === 'F32') {
    file.readInto(new Uint8Array(out.buffer), offset, what);
    return out;
  }
  const raw = new Uint16Array(count);
  file.readInto(new Uint8Array(raw.buffer), offset, what);
  if (type === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; ++i) bits[i] = raw[i]! << 16;
  } else {
    f16Table ??= Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));
    for (let i = 0; i < count; ++i) out[i] = f16Table[raw[i]!]!;
  }
  return out;
}

/** Where one tensor lies: its file, byte offset, row-major shape and storage type (as the file names it). */
export interface TensorSpan {
  file: BinaryFile;
  offset: number;
  shape: readonly number[];
  type: string;
}

/**
 * The WeightSource of tensors at known offsets in open files (every loader's last step). A quantised type (a GGUF's)
 * is read raw, its block scales checked; any other type than F32/F16/BF16 is an error when that tensor is read;
 * `close` closes the files.
 */
export function spanSource(label: string, spans: Map<string, TensorSpan>, close: () => void): WeightSource {
  const span = (name: string) => {
    const e = spans.get(name);
    if (!e) throw new ModelFormatError(label, `tensor "${name}" is missing`);
    return e;
  };
  return {
    file: label,
    has: (name) => spans.has(name),
    shape: (name) => span(name).shape,
    quantType(name) {
      const t = span(name).type;
      return isQuantType(t) ? t : undefined;
    },
    readRaw(name, row, rows) {
      const e = span(name);
      if (!isQuantType(e.type)) throw new ModelFormatError(label, `tensor "${name}" is not quantised`);
      const cols = e.shape[e.shape.length - 1]!;
      const rowBytes = quantRowBytes(e.type, cols);
      const raw = e.file.bytes(e.offset + row * rowBytes, rows * rowBytes, `tensor "${name}"`);
      const bad = badScale(e.type, raw, 0, rows, cols, row);
      if (bad)
        throw new ModelFormatError(e.file.path, `tensor "${name}" (${e.type}): the scale of ${bad} is not finite`);
      return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    },
    read(name, row, rows) {
      const e = span(name);
      const size = STORAGE_BYTES[e.type as StorageType] as number | undefined;
      if (size === undefined)
        throw new MiniVllmError(
          `${e.file.path}: tensor "${name}" has dtype ${e.type}; only F32, F16 and BF16 are supported`,
          'ERR_UNSUPPORTED',
        );
      const width = e.shape.slice(1).reduce((a, b) => a * b, 1);
      return readFloats(e.file, e.offset + row * width * size, rows * width, e.type as StorageType, `tensor "${name}"`);
    },
    close,
  };
}
