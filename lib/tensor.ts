// Tensor: a typed, shaped view of one native allocation on the CPU or a CUDA device.
import { type DType, type Device, isDType, isDevice, itemSize } from './dtype.js';
import { checkHostAllocation, HOST_CHECK_BYTES } from './host-memory.js';
import { type NativeStorage, type NativeTensor, native, requireDevice } from './native.js';
import { NULL_PROFILER, type OpProfiler } from './calls.js';
import { cudaDeviceIndex } from './runtime.js';

// Copies and fills report to the profiler they are given like ops (the addon's own argument names); none by default.
const fromHost = (dst: NativeTensor, src: Float32Array | Int32Array, p: OpProfiler = NULL_PROFILER): void =>
  p.op('copyFromHost', ['dst', 'src'], native.copyFromHost, [dst, src]);
const toHost = (src: NativeTensor, dst: Float32Array | Int32Array, p: OpProfiler = NULL_PROFILER): void =>
  p.op('copyToHost', ['src', 'dst'], native.copyToHost, [src, dst]);
const copyTensor = (dst: NativeTensor, src: NativeTensor, p: OpProfiler = NULL_PROFILER): void =>
  p.op('copy', ['dst', 'src'], native.copy, [dst, src]);
const fillTensor = (t: NativeTensor, value: number, p: OpProfiler = NULL_PROFILER): void =>
  p.op('fill', ['tensor', 'value'], native.fill, [t, value]);

export interface TensorOptions {
  /** Storage type; default float32. */
  dtype?: DType;
  /** Where the memory lives; default cpu. */
  device?: Device;
}

/** Host data accepted by {@link Tensor.fromArray}. */
export type HostData = ArrayLike<number>;

const MAX_DIMS = 8;
const MAX_DIM = 2 ** 31 - 1;

/** @internal What a bad argument was, for error messages: "null", "array", "Float32Array", "number", ... */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? ((v.constructor as { name?: string } | undefined)?.name ?? 'object') : typeof v;
}

function checkShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape))
    throw new TypeError(`${where}: shape must be an array of integers, got ${describeValue(shape)}`);
  if (shape.length > MAX_DIMS)
    throw new RangeError(`${where}: shape has ${shape.length} dims, at most ${MAX_DIMS} are supported`);
  for (const [i, d] of shape.entries()) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_DIM)
      throw new RangeError(`${where}: shape[${i}] must be an integer in [0, 2^31), got ${String(d)}`);
  }
  return [...(shape as number[])];
}

function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function resolveOptions(opts: TensorOptions | undefined, where: string): { dtype: DType; device: Device } {
  if (opts !== undefined && (typeof opts !== 'object' || opts === null))
    throw new TypeError(`${where}: options must be an object, got ${describeValue(opts)}`);
  const dtype = opts?.dtype ?? 'float32';
  const device = opts?.device ?? 'cpu';
  if (!isDType(dtype))
    throw new TypeError(`${where}: dtype must be float32, float16, bfloat16 or int32, got ${String(dtype)}`);
  if (!isDevice(device)) throw new TypeError(`${where}: device must be 'cpu' or 'cuda', got ${String(device)}`);
  return { dtype, device };
}

/** The addon's dtype codes (csrc/core/dtype.h: DType). */
const DTYPE_CODES: Record<DType, number> = { float32: 0, float16: 1, bfloat16: 2, int32: 3 };

export class Tensor implements NativeTensor {
  /** @internal The allocation this tensor views; shared by views. */
  readonly storage: NativeStorage;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** In elements. */
  readonly strides: readonly number[];
  /** In elements, from the start of the storage. */
  readonly offset: number;

  private constructor(storage: NativeStorage, dtype: DType, shape: number[], strides: number[], offset: number) {
    this.storage = storage;
    this.dtype = dtype;
    this.shape = Object.freeze(shape);
    this.strides = Object.freeze(strides);
    this.offset = offset;
    // What the addon reads of every tensor argument, in one array: reading the fields above one N-API call at a time
    // cost about 1 us a tensor, a tenth of a small model's decode step (bench/results/2026-12-06-cpu-round3-notes).
    // Non-enumerable, and the tensor frozen, so it cannot fall out of step with the fields.
    const n = shape.length;
    const layout = new Float64Array(3 + 2 * n);
    layout[0] = DTYPE_CODES[dtype];
    layout[1] = n;
    layout[2] = offset;
    for (let i = 0; i < n; ++i) {
      layout[3 + i] = shape[i]!;
      layout[3 + n + i] = strides[i]!;
    }
    Object.defineProperty(this, 'nativeLayout', { value: layout });
    Object.freeze(this);
  }

  /** @internal [dtype code, ndim, offset, ...shape, ...strides], as the addon reads it (lib/native.ts). */
  declare readonly nativeLayout: Float64Array;

  /** Uninitialised memory of the given shape (the contents are whatever was there). */
  static empty(shape: readonly number[], opts?: TensorOptions): Tensor {
    const dims = checkShape(shape, 'Tensor.empty');
    const { dtype, device } = resolveOptions(opts, 'Tensor.empty');
    const bytes = product(dims) * itemSize(dtype);
    if (!Number.isSafeInteger(bytes)) throw new RangeError(`Tensor.empty: shape [${dims.join(', ')}] is too large`);
    requireDevice(device);
    if (device === 'cpu' && bytes >= HOST_CHECK_BYTES) checkHostAllocation(bytes, `Tensor.empty [${dims.join(', ')}]`);
    const storage = new native.Storage(device, device === 'cuda' ? cudaDeviceIndex() : 0, bytes);
    return new Tensor(storage, dtype, dims, contiguousStrides(dims), 0);
  }

  /** A tensor filled with `value`. */
  static full(shape: readonly number[], value: number, opts?: TensorOptions): Tensor {
    return Tensor.empty(shape, opts).fill(value);
  }

  static zeros(shape: readonly number[], opts?: TensorOptions): Tensor {
    return Tensor.full(shape, 0, opts);
  }

  /**
   * A tensor holding `data` (row-major), rounded to `dtype` (round-to-nearest-even). `shape` defaults to
   * `[data.length]`. int32 tensors take integers in the int32 range only.
   */
  static fromArray(data: HostData, shape?: readonly number[], opts?: TensorOptions): Tensor {
    if (data === null || typeof data !== 'object' || typeof (data as { length?: unknown }).length !== 'number')
      throw new TypeError(`Tensor.fromArray: data must be an array or typed array, got ${describeValue(data)}`);
    const dims = checkShape(shape ?? [data.length], 'Tensor.fromArray');
    const { dtype } = resolveOptions(opts, 'Tensor.fromArray');
    const n = product(dims);
    if (data.length !== n)
      throw new RangeError(
        `Tensor.fromArray: data has ${data.length} elements but shape [${dims.join(', ')}] needs ${n}`,
      );
    let host: Float32Array | Int32Array;
    if (dtype === 'int32') {
      host = data instanceof Int32Array ? data : new Int32Array(n);
      if (host !== data) {
        for (let i = 0; i < n; ++i) {
          const v = data[i]!;
          if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31)
            throw new RangeError(`Tensor.fromArray: data[${i}] = ${v} is not an int32`);
          host[i] = v;
        }
      }
    } else {
      host = data instanceof Float32Array ? data : Float32Array.from(data);
    }
    const t = Tensor.empty(dims, opts);
    try {
      fromHost(t, host);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  get device(): Device {
    return this.storage.device;
  }

  get ndim(): number {
    return this.shape.length;
  }

  get numel(): number {
    return product(this.shape);
  }

  /** Bytes this view covers when contiguous (numel × item size). */
  get byteLength(): number {
    return this.numel * itemSize(this.dtype);
  }

  get disposed(): boolean {
    return this.storage.disposed;
  }

  get isContiguous(): boolean {
    const expect = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || this.strides[i] === expect[i]);
  }

  /**
   * Copies the elements to the host: Float32Array for float dtypes, Int32Array for int32. Waits for the device.
   * `profiler` times the copy (lib/calls.ts). `into`: an array of that type and `numel` elements to fill and return
   * instead of a new one (a caller that reads logits every step keeps one).
   */
  toArray(profiler?: OpProfiler, into?: Float32Array | Int32Array): Float32Array | Int32Array {
    this.assertLive('toArray');
    const out = into ?? (this.dtype === 'int32' ? new Int32Array(this.numel) : new Float32Array(this.numel));
    if (this.device === 'cuda' && !this.isContiguous) {
      using dense = this.clone();
      toHost(dense, out, profiler);
    } else {
      toHost(this, out, profiler);
    }
    return out;
  }

  /**
   * Copies host data (row-major, `numel` elements) into this tensor, which may be a view; float data is rounded to
   * the dtype. Float32Array for float dtypes, Int32Array for int32. `profiler` times the copy (lib/calls.ts).
   */
  write(data: Float32Array | Int32Array, profiler?: OpProfiler): this {
    this.assertLive('write');
    const want = this.dtype === 'int32' ? Int32Array : Float32Array;
    if (!(data instanceof want))
      throw new TypeError(`Tensor.write: ${this.dtype} tensors take a ${want.name}, got ${describeValue(data)}`);
    if (data.length !== this.numel)
      throw new RangeError(`Tensor.write: data has ${data.length} elements, the tensor holds ${this.numel}`);
    if (this.device === 'cuda' && !this.isContiguous) {
      using dense = Tensor.empty(this.shape, { dtype: this.dtype, device: this.device });
      fromHost(dense, data, profiler);
      copyTensor(this, dense, profiler);
    } else {
      fromHost(this, data, profiler);
    }
    return this;
  }

  /** A new contiguous tensor with the same elements on `device` (always a copy, never this tensor). */
  to(device: Device): Tensor {
    if (!isDevice(device)) throw new TypeError(`Tensor.to: device must be 'cpu' or 'cuda', got ${String(device)}`);
    return this.copyInto('to', this.dtype, device);
  }

  /** A new contiguous copy on the same device, optionally converted to another float dtype. */
  clone(opts?: { dtype?: DType }): Tensor {
    return this.copyInto('clone', opts?.dtype ?? this.dtype, this.device);
  }

  /** Copies `src` (same shape, any device, float dtypes convert) into this tensor; `profiler` times it. */
  copyFrom(src: Tensor, profiler?: OpProfiler): this {
    if (!(src instanceof Tensor))
      throw new TypeError(`Tensor.copyFrom: src must be a Tensor, got ${describeValue(src)}`);
    copyTensor(this, src, profiler);
    return this;
  }

  /** Sets every element to `value` (rounded to the dtype); `profiler` times it. */
  fill(value: number, profiler?: OpProfiler): this {
    fillTensor(this, value, profiler);
    return this;
  }

  /** The same elements with another shape (same count); this tensor must be contiguous. Shares memory. */
  view(shape: readonly number[]): Tensor {
    this.assertLive('view');
    const dims = checkShape(shape, 'Tensor.view');
    if (product(dims) !== this.numel)
      throw new RangeError(`Tensor.view: shape [${dims.join(', ')}] does not hold ${this.numel} elements`);
    if (!this.isContiguous) throw new RangeError('Tensor.view: the tensor must be contiguous (use clone() first)');
    return new Tensor(this.storage, this.dtype, dims, contiguousStrides(dims), this.offset);
  }

  /** Elements [start, start + length) along `dim`. Shares memory. */
  narrow(dim: number, start: number, length: number): Tensor {
    this.assertLive('narrow');
    if (!Number.isInteger(dim) || dim < -this.ndim || dim >= this.ndim)
      throw new RangeError(`Tensor.narrow: dim must be an integer in [${-this.ndim}, ${this.ndim}), got ${dim}`);
    const d = dim < 0 ? dim + this.ndim : dim;
    const size = this.shape[d]!;
    if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > size)
      throw new RangeError(`Tensor.narrow: [${start}, ${start}+${length}) is outside dim ${d} of size ${size}`);
    const shape = [...this.shape];
    shape[d] = length;
    return new Tensor(this.storage, this.dtype, shape, [...this.strides], this.offset + start * this.strides[d]!);
  }

  /** Frees the memory now (for every view of it). Safe to call twice; any later use throws. */
  dispose(): void {
    this.storage.free();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return (
      `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, ` +
      `device=${this.device}${this.disposed ? ', disposed' : ''})`
    );
  }

  /** A new tensor of this shape holding a copy of this one; freed again if the copy fails. */
  private copyInto(what: string, dtype: DType, device: Device): Tensor {
    this.assertLive(what);
    const t = Tensor.empty(this.shape, { dtype, device });
    try {
      return t.copyFrom(this);
    } catch (e) {
      t.dispose();
      throw e;
    }
  }

  private assertLive(what: string): void {
    if (this.storage.disposed) throw new TypeError(`Tensor.${what}: the tensor has been disposed`);
  }
}
