import { native } from '../native.js';

/** Per-row settings of {@link sampleRows}, each an array of `rows` entries. */
export interface SampleRowsParams {
  /** 0 = greedy (argmax, lowest id on ties) */
  temperature: Float32Array;
  /** keep the k most likely tokens; 0 = off */
  topK: Int32Array;
  /** keep the smallest set of most likely tokens holding this much probability; 1 = off */
  topP: Float32Array;
  /** keep tokens at least minP times as likely as the most likely one; 0 = off */
  minP: Float32Array;
  /** a uniform draw in [0, 1) per row that picks the token */
  uniform: Float64Array;
}

/**
 * Picks one token id per row of host logits `[rows, vocab]` (float32, row-major), on the CPU threads. Filters
 * apply as in vLLM: temperature, then top-k, top-p and min-p on the scaled distribution; the kept tokens are walked
 * in id order, so a given `uniform` always gives the same token. NaN or +Infinity logits are a RangeError.
 */
export function sampleRows(logits: Float32Array, rows: number, vocab: number, p: SampleRowsParams, out = new Int32Array(rows)): Int32Array {
  native.sampleRows(logits, rows, vocab, p.temperature, p.topK, p.topP, p.minP, p.uniform, out);
  return out;
}
