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
