// Token sampling from host logits, on the CPU threads; structured output's token mask, on either device.
import { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

/** One greedy row of three logits: sampleRows' example call. */
function greedyRow(): unknown[] {
  const params: SampleRowsParams = {
    temperature: Float32Array.of(0),
    topK: Int32Array.of(0),
    topP: Float32Array.of(1),
    minP: Float32Array.of(0),
    uniform: Float64Array.of(0.5),
  };
  return [Float32Array.of(0.1, 0.9, 0.3), 1, 3, params, new Int32Array(1)];
}

const OPS = defineOps(
  'sampling',
  {
    sampleRows: [
      'logits: Float32Array, rows: positiveInteger, vocab: positiveInteger, ' +
        'params: {temperature, topK, topP, minP, uniform}, out: Int32Array',
      greedyRow,
    ],
  },
  ['cpu'],
);

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
export function sampleRows(
  logits: Float32Array,
  rows: number,
  vocab: number,
  p: SampleRowsParams,
  out = new Int32Array(rows),
): Int32Array {
  runOp(OPS.sampleRows, [logits, rows, vocab, p, out]);
  return out;
}

const MASK = defineOps('sampling', {
  applyTokenBitmask: [
    'logits: anyFloat[numRows, vocab], bitmask: int32[n, words], rows: int32[n]',
    (device) => [
      ...zeros(device, [2, 40]),
      Tensor.fromArray([-1, 0xff, 0, 0], [2, 2], { dtype: 'int32', device }),
      Tensor.fromArray([1, 0], [2], { dtype: 'int32', device }),
    ],
  ],
});

/**
 * Structured output's mask: `logits[rows[i], t] = -Infinity` wherever bit `t % 32` of `bitmask[i, t / 32]` is 0 (the
 * layout xgrammar and vLLM use: a set bit allows the token). Rows not named are left alone.
 *
 * @param logits  [numRows, vocab], any float dtype, written in place (rows may be strided)
 * @param bitmask int32 [n, ceil(vocab / 32)]
 * @param rows    int32 [n], the logits row of each mask row, each in [0, numRows)
 *
 * A rows entry outside the logits is a RangeError (on CUDA at the next synchronize; that row is left as it was).
 */
export function applyTokenBitmask(logits: Tensor, bitmask: Tensor, rows: Tensor): void {
  runOp(MASK.applyTokenBitmask, [logits, bitmask, rows]);
}
