// GGUF's quantised block types, written from ggml's block layouts: the reference dequantiser of every type (what the
// kernels are tested against), and the byte sizes the loader checks files by. csrc/core/quant.h is the kernels' twin.

/** The quantised types we run, by their GGUF (ggml) names. */
export type QuantType = 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';

export interface QuantFormat {
  /** ggml's type id, as GGUF stores it and the ops take it. */
  id: number;
  /** Values per block. */
  block: number;
  /** Bytes per block. */
  bytes: number;
}

export const QUANT_FORMATS: Readonly<Record<QuantType, QuantFormat>> = {
  Q4_0: { id: 2, block: 32, bytes: 18 },
  Q4_1: { id: 3, block: 32, bytes: 20 },
  Q5_0: { id: 6, block: 32, bytes: 22 },
  Q5_1: { id: 7, block: 32, bytes: 24 },
  Q8_0: { id: 8, block: 32, bytes: 34 },
  Q4_K: { id: 12, block: 256, bytes: 144 },
  Q5_K: { id: 13, block: 256, bytes: 176 },
  Q6_K: { id: 14, block: 256, bytes: 210 },
};

export const QUANT_TYPES = Object.keys(QUANT_FORMATS) as QuantType[];

export function isQuantType(v: unknown): v is QuantType {
  return typeof v === 'string' && Object.hasOwn(QUANT_FORMATS, v);
}

/** The type of ggml id `id`, or undefined. */
export function quantTypeOfId(id: number): QuantType | undefined {
  return QUANT_TYPES.find((t) => QUANT_FORMATS[t].id === id);
}

/** Bytes of `cols` values of `type` (cols a multiple of the block). */
export function quantRowBytes(type: QuantType, cols: number): number {
  const f = QUANT_FORMATS[type];
  return (cols / f.block) * f.bytes;
}

/** int32 words a row takes in device memory: rows are padded to whole words (csrc/core/quant.h). */
export function quantRowWords(type: QuantType, cols: number): number {
  return Math.ceil(quantRowBytes(type, cols) / 4);
}

const F16 = new Float32Array(65536);
{
  for (let h = 0; h < 65536; ++h) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    F16[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
}

/** The fp16 at byte `o` of `b`, as a number. */
export function half(b: Uint8Array, o: number): number {
  return F16[b[o]! | (b[o + 1]! << 8)]!;
}

/** A K type's 6-bit scale and min of sub-block j (0..7), from the 12 packed bytes at `o`. */
export function kScaleMin(b: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [b[o + j]! & 63, b[o + j + 4]! & 63];
  return [(b[o + j + 4]! & 0xf) | ((b[o + j - 4]! >> 6) << 4), (b[o + j + 4]! >> 4) | ((b[o + j]! >> 6) << 4)];
}

/** Dequantises one block at byte `o` of `b` into y[yo .. yo + block). */
export function dequantizeBlock(type: QuantType, b: Uint8Array, o: number, y: Float32Array, yo = 0): void {
  switch (type) {
    case 'Q8_0': {
      const d = half(b, o);
      for (let l = 0; l < 32; ++l) y[yo + l] = d * ((b[o + 2 + l]! << 24) >> 24);
      return;
    }
    case 'Q4_0':
    case 'Q4_1': {
      const one = type === 'Q4_1';
      const d = half(b, o);
      const m = one ? half(b, o + 2) : -8 * d;
      const qs = o + (one ? 4 : 2);
      for (let l = 0; l < 16; ++l) {
        y[yo + l] = d * (b[qs + l]! & 0xf) + m;
        y[yo + l + 16] = d * (b[qs + l]! >> 4) + m;
      }
      return;
    }
    case 'Q5_0':
    case 'Q5_1': {
      const one = type === 'Q5_1';
      const d = half(b, o);
      const m = one ? half(b, o + 2) : -16 * d;
      const h = o + (one ? 4 : 2);
      const qh = (b[h]! | (b[h + 1]! << 8) | (b[h + 2]! << 16) | (b[h + 3]! << 24)) >>> 0;
      const qs = h + 4;
      for (let l = 0; l < 16; ++l) {
        y[yo + l] = d * ((b[qs + l]! & 0xf) | (((qh >>> l) & 1) << 4)) + m;
        y[yo + l + 16] = d * ((b[qs + l]! >> 4) | (((qh >>> (l + 16)) & 1) << 4)) + m;
      }
      return;
    }
    case 'Q4_K':
    case 'Q5_K': {
      // 8 sub-blocks of 32: y = d * scale_j * q - dmin * min_j; pairs of sub-blocks share 32 bytes of nibbles
      const five = type === 'Q5_K';
      const d = half(b, o);
      const dmin = half(b, o + 2);
      const qh = o + 16;
      const qs = o + (five ? 48 : 16);
      for (let j = 0; j < 8; ++j) {
        const [sc, mn] = kScaleMin(b, o + 4, j);
        const shift = (j & 1) * 4;
        const q = qs + 32 * (j >> 1);
        for (let l = 0; l < 32; ++l) {
          const hi = five ? ((b[qh + l]! >> j) & 1) << 4 : 0;
          y[yo + 32 * j + l] = d * sc * (((b[q + l]! >> shift) & 0xf) | hi) - dmin * mn;
        }
      }
      return;
    }
    case 'Q6_K': {
      // two halves of 128: 4 bits from ql, 2 from qh, minus 32, times an int8 scale per 16 values
      const d = half(b, o + 208);
      for (let n = 0; n < 2; ++n) {
        const ql = o + 64 * n;
        const qh = o + 128 + 32 * n;
        const sc = o + 192 + 8 * n;
        for (let l = 0; l < 32; ++l) {
          const is = l >> 4;
          const h = b[qh + l]!;
          const q1 = ((b[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
          const q2 = ((b[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
          const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
          const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
          const s = (k: number) => (b[sc + k]! << 24) >> 24;
          const yb = yo + 128 * n + l;
          y[yb] = d * s(is) * q1;
          y[yb + 32] = d * s(is + 2) * q2;
          y[yb + 64] = d * s(is + 4) * q3;
          y[yb + 96] = d * s(is + 6) * q4;
        }
      }
      return;
    }
  }
}

/** Dequantises `rows` rows of `cols` values, `stride` bytes apart from byte `o` of `b`, into rows x cols floats. */
export function dequantizeRows(
  type: QuantType,
  b: Uint8Array,
  o: number,
  stride: number,
  rows: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; ++r) dequantizeRow(type, b, o + r * stride, cols, out.subarray(r * cols, (r + 1) * cols));
  return out;
}

/** Dequantises `cols` values of `type` (whole blocks) starting at byte `o` of `b`. */
export function dequantizeRow(
  type: QuantType,
  b: Uint8Array,
  o: number,
  cols: number,
  out?: Float32Array,
): Float32Array {
  const f = QUANT_FORMATS[type];
  const y = out ?? new Float32Array(cols);
  for (let i = 0; i < cols / f.block; ++i) dequantizeBlock(type, b, o + i * f.bytes, y, i * f.block);
  return y;
}

/**
 * The first block scale (d, or dmin) of `rows` rows of `type` at `o` that is not finite, as "row r block i", or null:
 * a file's scales are checked when it loads, so that NaN or infinity never reaches a kernel.
 */
export function badScale(
  type: QuantType,
  b: Uint8Array,
  o: number,
  rows: number,
  cols: number,
  firstRow = 0,
): string | null {
  const f = QUANT_FORMATS[type];
  const per = cols / f.block;
  const at: number[] = type === 'Q6_K' ? [208] : type === 'Q8_0' || type === 'Q4_0' || type === 'Q5_0' ? [0] : [0, 2];
  for (let r = 0; r < rows; ++r)
    for (let i = 0; i < per; ++i) {
      const base = o + (r * per + i) * f.bytes;
      for (const a of at) if (!Number.isFinite(half(b, base + a))) return `row ${firstRow + r} block ${i}`;
    }
  return null;
}
