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
  const w = unpackQuantWeight(packed, outFeatures);
  return quantLinear(x, w, typeId, bias, numTokens, outFeatures, inFeatures, dtype);
}

/** Where packQuantWeight puts byte i of row r's block b (of nb): [row's source offset, packed offset] per byte. */
function interleavedBytes(rows: number, rowBytes: number, visit: (src: number, dst: number) => void): void {
  const nb = Math.floor(rowBytes / 18);
  for (let g = 0; g < rows / 8; ++g)
    for (let b = 0; b < nb; ++b) {
      const o = g * 8 * rowBytes + b * 144;
      for (let r = 0; r < 8; ++r) {
        const s = (8 * g + r) * rowBytes + b * 18;
        visit(s, o + 2 * r);
        visit(s + 1, o + 2 * r + 1);
        for (let c = 0; c < 4; ++c) for (let i = 0; i < 4; ++i) visit(s + 2 + 4 * c + i, o + 16 + 32 * c + 4 * r + i);
      }
    }
}

/** The rows of a weight packQuantWeight interleaved, in ggml's order again (the padding of each row zero). */
export function unpackQuantWeight(packed: Int32Array, rows: number): Int32Array {
  const src = new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength);
  const out = new Int32Array(packed.length);
  const dst = new Uint8Array(out.buffer);
  interleavedBytes(rows, (packed.length / Math.max(1, rows)) * 4, (s, p) => (dst[s] = src[p]!));
  return out;
}

/**
 * The CPU's interleaved Q4_0 (packQuantWeight), from its description in csrc/cpu/quant_x8.h: rows in groups of 8, each
 * group's bytes holding per block b, at 144 b, the 8 rows' fp16 scales (row r at 2r), then 4 chunks of 32 bytes with
 * row r's nibble bytes [4c, 4c + 4) at 32c + 4r; zero after the blocks.
 */
export function packQuantWeight(words: Int32Array, rows: number): Int32Array {
  const src = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  const out = new Int32Array(words.length);
  const dst = new Uint8Array(out.buffer);
  interleavedBytes(rows, (words.length / Math.max(1, rows)) * 4, (s, p) => (dst[p] = src[s]!));
  return out;
}
