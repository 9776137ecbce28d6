// Reference of the quantised ops: dequantise with the reference dequantiser (lib/quant/formats.ts), then the float
// linear / row gather.
import type { FloatDType } from '../dtype.js';
import { dequantizeRows, type QuantType, quantTypeOfId } from '../quant/formats.js';
import { roundTo } from './dtype.js';
import { linear } from './linear.js';

/** The float32 values of a quantised [rows, rowWords] table (as its int32 words) with rows of `cols` values. */
export function dequantizeWords(words: Int32Array, rows: number, cols: number, typeId: number): Float32Array {
  const type = quantTypeOfId(typeId) as QuantType;
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  return dequantizeRows(type, bytes, 0, (words.length / Math.max(1, rows)) * 4, rows, cols);
}

/** out = x · dequant(weight)ᵀ (+ bias), rounded once to dtype. */
export function quantLinear(
  x: ArrayLike<number>,
  weight: Int32Array,
  typeId: number,
  bias: ArrayLike<number> | null,
  numTokens: number,
  outFeatures: number,
  inFeatures: number,
  dtype: FloatDType,
): Float64Array {
  const w = dequantizeWords(weight, outFeatures, inFeatures, typeId);
  return linear(x, w, bias, numTokens, outFeatures, inFeatures, dtype);
}

/**
 * x as the CPU's quantised GEMV sees it (csrc/cpu/quant_dots.h, as llama.cpp's Q8_0): per 32 values, amax = max |x|
 * in float32, d = amax / 127 and q = round-half-even(x · (127 / amax)) in float32, then x̃ = d · q. Returns x̃ in
 * float64; `scales` receives each block's d.
 */
export function roundActivationsQ8(x: ArrayLike<number>, scales?: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < x.length / 32; ++b) {
    let amax = 0;
    for (let i = 32 * b; i < 32 * b + 32; ++i) amax = Math.max(amax, Math.abs(Math.fround(x[i]!)));
    const d = Math.fround(amax / 127);
    const id = amax > 0 ? Math.fround(127 / amax) : 0;
    if (scales) scales[b] = d;
    for (let i = 32 * b; i < 32 * b + 32; ++i) out[i] = d * roundHalfEven(Math.fround(Math.fround(x[i]!) * id));
  }
  return out;
}

/**
 * The indices of the values of x that sit so close to a rounding boundary of roundActivationsQ8 that a computation of
 * x in fp32 (a few units of 2^-24 off the exact value) may round them to the other neighbouring integer: v =
 * |x·127/amax| within 8·2^-24·v (plus 2^-20) of a half-integer. Such a value moves a product by a whole step
 * amax / 127. (Flips were seen at up to 2.9·2^-24·v, none beyond.)
 */
export function ambiguousQ8Values(x: ArrayLike<number>): number[] {
  const found: number[] = [];
  for (let b = 0; b < x.length / 32; ++b) {
    let amax = 0;
    for (let i = 32 * b; i < 32 * b + 32; ++i) amax = Math.max(amax, Math.abs(x[i]!));
    if (amax === 0) continue;
    for (let i = 32 * b; i < 32 * b + 32; ++i) {
      const v = Math.abs((x[i]! * 127) / amax);
      if (Math.abs(v - Math.floor(v) - 0.5) <= 8 * 2 ** -24 * v + 2 ** -20) found.push(i);
    }
  }
  return found;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  return v - f > 0.5 || (v - f === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** out[i] = dequant(table[ids[i]]) rounded to dtype. */
export function quantEmbedding(
  ids: ArrayLike<number>,
  table: Int32Array,
  typeId: number,
  vocab: number,
  hidden: number,
  dtype: FloatDType,
): Float64Array {
  const t = dequantizeWords(table, vocab, hidden, typeId);
  const out = new Float64Array(ids.length * hidden);
  for (let i = 0; i < ids.length; ++i)
    for (let k = 0; k < hidden; ++k) out[i * hidden + k] = roundTo(t[ids[i]! * hidden + k]!, dtype);
  return out;
}

/** quantEmbedding over a table packQuantWeight interleaved: its rows put back in order, then that. */
export function quantEmbeddingPacked(
  ids: ArrayLike<number>,
  table: Int32Array,
  typeId: number,
  vocab: number,
  hidden: number,
  dtype: FloatDType,
): Float64Array {
  return quantEmbedding(ids, unpackQuantWeight(table, vocab, typeId), typeId, vocab, hidden, dtype);
}

/** quantLinear over a weight packQuantWeight interleaved: its rows put back in order (unpackQuantWeight), then that. */
export function quantLinearPacked(
  x: ArrayLike<number>,
  packed: Int32Array,
  typeId: number,
  bias: ArrayLike<number> | null,
  numTokens: number,
  outFeatures: number,
  inFeatures: number,
  dtype: FloatDType,
): Float64Array {
  const w = unpackQuantWeight(packed, outFeatures, typeId);
  return quantLinear(x, w, typeId, bias, numTokens, outFeatures, inFeatures, dtype);
}

const bytesOf = (w: Int32Array) => new Uint8Array(w.buffer, w.byteOffset, w.byteLength);

/**
 * The CPU's interleaved layout (packQuantWeight) of Q4_0 (typeId 2), Q8_0 (8), Q4_K (12) or Q6_K (14), written from
 * its description in csrc/cpu/quant_x8_layout.h. Rows in groups of 8; "nibble bytes" of 32 values: byte t holds value
 * t (low nibble) and t + 16 (high); chunk c holds row r's nibble bytes [4c, 4c + 4) at 32c + 4r.
 * - Q4_0, per block at 144 b: the 8 fp16 scales (row r at 2r), then the 4 chunks.
 * - Q8_0, per block at 272 b: the 8 fp16 scales, then 8 chunks of row r's bytes [4c, 4c + 4) at 32c + 4r.
 * - Q4_K, per super-block at 1152 sb: the 8 fp16 d, the 8 fp16 dmin; scale byte k of row r at
 *   32 + 32 (k / 4) + 4r + k % 4; then sub-block j's 4 chunks at 128 + 128j.
 * - Q6_K, per super-block at 1680 sb: the 8 fp16 d; scale k of row r at 16 + 8k + r; then 8 units of 32 values, 192
 *   bytes each at 144 + 192u: the low 4 bits as 4 chunks, then H0 (chunks 0, 1) and H1 (chunks 2, 3), row r's 4 bytes
 *   at 4r, byte i holding at bits 2m..2m+1 (m = 0..3) the high 2 bits of value 4c + i (+16 if m is odd), c = 2k + m/2.
 * The bytes after a group's blocks are zero.
 */
export function packQuantWeight(words: Int32Array, rows: number, typeId = 2): Int32Array {
  const rowBytes = (words.length / Math.max(1, rows)) * 4;
  const src = bytesOf(words);
  const out = new Int32Array(words.length);
  const dst = bytesOf(out);
  const [q8, q4k, q6] = [typeId === 8, typeId === 12, typeId === 14];
  const bb = q6 ? 210 : q4k ? 144 : q8 ? 34 : 18;
  const chunks = q8 ? 8 : 4;
  for (let g = 0; g < rows / 8; ++g)
    for (let b = 0; b < Math.floor(rowBytes / bb); ++b)
      for (let r = 0; r < 8; ++r) {
        const s = (8 * g + r) * rowBytes + b * bb;
        const o = g * 8 * rowBytes + b * 8 * bb;
        if (q4k) {
          dst.set(src.subarray(s, s + 2), o + 2 * r);
          dst.set(src.subarray(s + 2, s + 4), o + 16 + 2 * r);
          for (let k = 0; k < 12; ++k) dst[o + 32 + 32 * (k >> 2) + 4 * r + (k & 3)] = src[s + 4 + k]!;
          for (let j = 0; j < 8; ++j)
            for (let t = 0; t < 16; ++t)
              dst[o + 128 + 128 * j + 32 * (t >> 2) + 4 * r + (t & 3)] =
                q4kValue(src, s, j, t) | (q4kValue(src, s, j, t + 16) << 4);
          continue;
        }
        if (!q6) {
          dst.set(src.subarray(s, s + 2), o + 2 * r);
          for (let c = 0; c < chunks; ++c) dst.set(src.subarray(s + 2 + 4 * c, s + 6 + 4 * c), o + 16 + 32 * c + 4 * r);
          continue;
        }
        dst.set(src.subarray(s + 208, s + 210), o + 2 * r);
        for (let k = 0; k < 16; ++k) dst[o + 16 + 8 * k + r] = src[s + 192 + k]!;
        for (let u = 0; u < 8; ++u)
          for (let t = 0; t < 16; ++t) {
            const [lo, hi] = [q6kValue(src, s, u, t), q6kValue(src, s, u, t + 16)];
            const [c, i, unit] = [t >> 2, t & 3, o + 144 + 192 * u];
            dst[unit + 32 * c + 4 * r + i] = (lo & 15) | ((hi & 15) << 4);
            dst[unit + 128 + 32 * (c >> 1) + 4 * r + i]! |=
              ((lo >> 4) << (4 * (c & 1))) | ((hi >> 4) << (4 * (c & 1) + 2));
          }
      }
  return out;
}

/** Q4_K's 4-bit value 32j + l of the ggml super-block at byte o of b. */
function q4kValue(b: Uint8Array, o: number, j: number, l: number): number {
  return (b[o + 16 + 32 * (j >> 1) + l]! >> (4 * (j & 1))) & 15;
}

/** Q6_K's 6-bit value 32u + j (before its -32) of the ggml super-block at byte o of b. */
function q6kValue(b: Uint8Array, o: number, u: number, j: number): number {
  const [half, quarter] = [u >> 2, u & 3];
  const low = (b[o + 64 * half + (quarter & 1) * 32 + j]! >> (4 * (quarter >> 1))) & 15;
  return low | (((b[o + 128 + 32 * half + j]! >> (2 * quarter)) & 3) << 4);
}

/** The rows of a weight packQuantWeight interleaved, as ggml lays them out again (each row's padding zero). */
export function unpackQuantWeight(packed: Int32Array, rows: number, typeId = 2): Int32Array {
  const rowBytes = (packed.length / Math.max(1, rows)) * 4;
  const src = bytesOf(packed);
  const out = new Int32Array(packed.length);
  const dst = bytesOf(out);
  const [q8, q4k, q6] = [typeId === 8, typeId === 12, typeId === 14];
  const bb = q6 ? 210 : q4k ? 144 : q8 ? 34 : 18;
  const chunks = q8 ? 8 : 4;
  for (let g = 0; g < rows / 8; ++g)
    for (let b = 0; b < Math.floor(rowBytes / bb); ++b)
      for (let r = 0; r < 8; ++r) {
        const s = (8 * g + r) * rowBytes + b * bb;
        const o = g * 8 * rowBytes + b * 8 * bb;
        if (q4k) {
          dst.set(src.subarray(o + 2 * r, o + 2 * r + 2), s);
          dst.set(src.subarray(o + 16 + 2 * r, o + 18 + 2 * r), s + 2);
          for (let k = 0; k < 12; ++k) dst[s + 4 + k] = src[o + 32 + 32 * (k >> 2) + 4 * r + (k & 3)]!;
          for (let j = 0; j < 8; ++j)
            for (let l = 0; l < 32; ++l) {
              const t = l & 15;
              const v = (src[o + 128 + 128 * j + 32 * (t >> 2) + 4 * r + (t & 3)]! >> (l < 16 ? 0 : 4)) & 15;
              dst[s + 16 + 32 * (j >> 1) + l]! |= v << (4 * (j & 1));
            }
          continue;
        }
        if (!q6) {
          dst.set(src.subarray(o + 2 * r, o + 2 * r + 2), s);
          for (let c = 0; c < chunks; ++c)
            dst.set(src.subarray(o + 16 + 32 * c + 4 * r, o + 20 + 32 * c + 4 * r), s + 2 + 4 * c);
          continue;
        }
        dst.set(src.subarray(o + 2 * r, o + 2 * r + 2), s + 208);
        for (let k = 0; k < 16; ++k) dst[s + 192 + k] = src[o + 16 + 8 * k + r]!;
        for (let u = 0; u < 8; ++u)
          for (let j = 0; j < 32; ++j) {
            const [t, unit] = [j & 15, o + 144 + 192 * u];
            const [c, i] = [t >> 2, t & 3];
            const nib = (src[unit + 32 * c + 4 * r + i]! >> (j < 16 ? 0 : 4)) & 15;
            const high = (src[unit + 128 + 32 * (c >> 1) + 4 * r + i]! >> (4 * (c & 1) + (j < 16 ? 0 : 2))) & 3;
            const [half, quarter] = [u >> 2, u & 3];
            dst[s + 64 * half + (quarter & 1) * 32 + j]! |= nib << (4 * (quarter >> 1));
            dst[s + 128 + 32 * half + j]! |= high << (2 * quarter);
          }
      }
  return out;
}
