// Quantisers into ggml's block types. Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 follow ggml's reference rounding exactly (fp32
// arithmetic, the same casts). The K types take the simple route: a min-max scale per sub-block, the sub-block
// scales quantised to 6 (Q4_K, Q5_K) or 8 bits (Q6_K) against the block's largest, where llama.cpp searches for
// the scale that minimises the error; the files are valid for every reader and the error stays within the type's
// bound (test/quant.test.ts), a little above llama.cpp's.
import { QUANT_FORMATS, type QuantType, half, kScaleMin, quantRowBytes } from './formats.js';

const f32 = Math.fround;

/** fp16 bits of x, rounded to nearest even. */
export function halfBits(x: number): number {
  const buf = new Float32Array([x]);
  const u = new Uint32Array(buf.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    const v = new Float32Array(new Uint32Array([a]).buffer)[0]! * 16777216;
    let i = Math.floor(v);
    const frac = v - i;
    if (frac > 0.5 || (frac === 0.5 && i & 1)) ++i;
    return sign | i;
  }
  const odd = (a >>> 13) & 1;
  return sign | (((a + 0xc8000fff + odd) >>> 13) & 0xffff);
}

/** C's roundf: halves away from zero. */
const roundf = (v: number) => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);

function putHalf(b: Uint8Array, o: number, x: number): void {
  const h = halfBits(x);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
}

/** The value of largest magnitude in x[o .. o + n), sign kept (the first such value). */
function signedMax(x: Float32Array, o: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let i = 0; i < n; ++i) {
    const v = x[o + i]!;
    if (Math.abs(v) > amax) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, o: number, n: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; ++i) {
    min = Math.min(min, x[o + i]!);
    max = Math.max(max, x[o + i]!);
  }
  return [min, max];
}

function quantizeBlock(type: QuantType, x: Float32Array, xo: number, b: Uint8Array, o: number): void {
  switch (type) {
    case 'Q8_0': {
      let amax = 0;
      for (let l = 0; l < 32; ++l) amax = Math.max(amax, Math.abs(x[xo + l]!));
      const d = f32(amax / 127);
      const id = d ? f32(1 / d) : 0;
      putHalf(b, o, d);
      for (let l = 0; l < 32; ++l) b[o + 2 + l] = roundf(f32(x[xo + l]! * id)) & 0xff;
      return;
    }
    case 'Q4_0':
    case 'Q5_0': {
      const five = type === 'Q5_0';
      const d = f32(signedMax(x, xo, 32) / (five ? -16 : -8));
      const id = d ? f32(1 / d) : 0;
      putHalf(b, o, d);
      const q = (v: number) => Math.min(five ? 31 : 15, Math.trunc(f32(f32(v * id) + (five ? 16.5 : 8.5))) & 0xff);
      packNibbles(x, xo, q, b, o + 2, five);
      return;
    }
    case 'Q4_1':
    case 'Q5_1': {
      const five = type === 'Q5_1';
      const [min, max] = minMax(x, xo, 32);
      const d = f32(f32(max - min) / (five ? 31 : 15));
      const id = d ? f32(1 / d) : 0;
      putHalf(b, o, d);
      putHalf(b, o + 2, min);
      const q = (v: number) => Math.min(five ? 31 : 15, Math.trunc(f32(f32(f32(v - min) * id) + 0.5)) & 0xff);
      packNibbles(x, xo, q, b, o + 4, five);
      return;
    }
    case 'Q4_K':
    case 'Q5_K':
      return quantizeK45(type === 'Q5_K', x, xo, b, o);
    case 'Q6_K':
      return quantizeQ6K(x, xo, b, o);
  }
}

/** The 32-value types' packing: value l in the low nibble of byte l, value l + 16 in its high nibble; with `five`,
 * the fifth bits in a 32-bit word before the nibbles. */
function packNibbles(x: Float32Array, xo: number, q: (v: number) => number, b: Uint8Array, o: number, five: boolean) {
  let qh = 0;
  const qs = o + (five ? 4 : 0);
  for (let l = 0; l < 16; ++l) {
    const a = q(x[xo + l]!);
    const c = q(x[xo + l + 16]!);
    b[qs + l] = (a & 0xf) | ((c & 0xf) << 4);
    if (five) qh |= (((a & 0x10) >> 4) << l) | (((c & 0x10) >> 4) << (l + 16));
  }
  if (five) for (let i = 0; i < 4; ++i) b[o + i] = (qh >>> (8 * i)) & 0xff;
}

function quantizeK45(five: boolean, x: Float32Array, xo: number, b: Uint8Array, o: number): void {
  const levels = five ? 31 : 15;
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  for (let j = 0; j < 8; ++j) {
    const [lo, hi] = minMax(x, xo + 32 * j, 32);
    const min = Math.min(lo, 0);
    scales[j] = hi > min ? (hi - min) / levels : 0;
    mins[j] = -min;
  }
  const maxScale = Math.max(...scales);
  const maxMin = Math.max(...mins);
  const inv = maxScale > 0 ? 63 / maxScale : 0;
  const invMin = maxMin > 0 ? 63 / maxMin : 0;
  b.fill(0, o, o + QUANT_FORMATS[five ? 'Q5_K' : 'Q4_K'].bytes);
  for (let j = 0; j < 8; ++j) {
    const ls = Math.min(63, Math.round(inv * scales[j]!));
    const lm = Math.min(63, Math.round(invMin * mins[j]!));
    if (j < 4) {
      b[o + 4 + j] = ls;
      b[o + 4 + j + 4] = lm;
    } else {
      b[o + 4 + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      b[o + 4 + j - 4]! |= (ls >> 4) << 6;
      b[o + 4 + j]! |= (lm >> 4) << 6;
    }
  }
  putHalf(b, o, maxScale / 63);
  putHalf(b, o + 2, maxMin / 63);
  const d = half(b, o);
  const dmin = half(b, o + 2);
  const qh = o + 16;
  const qs = o + (five ? 48 : 16);
  for (let j = 0; j < 8; ++j) {
    const [sc, m] = kScaleMin(b, o + 4, j);
    const dd = d * sc;
    const dm = dmin * m;
    for (let l = 0; l < 32; ++l) {
      const L = dd ? Math.max(0, Math.min(levels, Math.round((x[xo + 32 * j + l]! + dm) / dd))) : 0;
      const byte = qs + 32 * (j >> 1) + l;
      b[byte]! |= (L & 0xf) << ((j & 1) * 4);
      if (five && L & 0x10) b[qh + l]! |= 1 << j;
    }
  }
}

function quantizeQ6K(x: Float32Array, xo: number, b: Uint8Array, o: number): void {
  const scales = new Float32Array(16);
  let maxScale = 0;
  for (let ib = 0; ib < 16; ++ib) {
    scales[ib] = signedMax(x, xo + 16 * ib, 16) / -32;
    if (Math.abs(scales[ib]!) > Math.abs(maxScale)) maxScale = scales[ib]!;
  }
  b.fill(0, o, o + 210);
  const iscale = maxScale ? -128 / maxScale : 0;
  putHalf(b, o + 208, iscale ? 1 / iscale : 0);
  const d = half(b, o + 208);
  const L = new Uint8Array(256);
  for (let ib = 0; ib < 16; ++ib) {
    const sc = Math.max(-128, Math.min(127, Math.round(iscale * scales[ib]!)));
    b[o + 192 + ib] = sc & 0xff;
    const dd = d * sc;
    for (let l = 0; l < 16; ++l) {
      const q = dd ? Math.max(-32, Math.min(31, Math.round(x[xo + 16 * ib + l]! / dd))) : 0;
      L[16 * ib + l] = q + 32;
    }
  }
  for (let n = 0; n < 2; ++n) {
    const ql = o + 64 * n;
    const qh = o + 128 + 32 * n;
    const Ln = 128 * n;
    for (let l = 0; l < 32; ++l) {
      const q1 = L[Ln + l]!;
      const q2 = L[Ln + l + 32]!;
      const q3 = L[Ln + l + 64]!;
      const q4 = L[Ln + l + 96]!;
      b[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      b[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      b[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
}

/** Quantises `rows` rows of `cols` values (cols a multiple of the type's block) into ggml's contiguous rows. */
export function quantizeRows(type: QuantType, x: Float32Array, rows: number, cols: number): Uint8Array {
  const f = QUANT_FORMATS[type];
  if (cols % f.block !== 0)
    throw new RangeError(`quantize ${type}: ${cols} values a row is not a multiple of ${f.block}`);
  const rowBytes = quantRowBytes(type, cols);
  const out = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; ++r)
    for (let i = 0; i < cols / f.block; ++i)
      quantizeBlock(type, x, r * cols + i * f.block, out, r * rowBytes + i * f.bytes);
  return out;
}
