import type { FloatDType, Device } from '../dtype.js';
import { native } from '../native.js';
import { ropeCosSin, type RopeScaling } from '../reference/pos-encoding.js';
import { Tensor } from '../tensor.js';
import { tensorArg } from './args.js';

/**
 * Rotary position embedding, in place on query and key.
 *
 * Each head's first rotaryDim elements are rotated by the angle of the token's position; the rest are left as
 * they are. NeoX style (`isNeox = true`, Hugging Face Llama) pairs element i with i + rotaryDim/2; GPT-J style
 * (llama2.c) pairs 2i with 2i+1.
 *
 * @param positions   int32 [numTokens], each in [0, maxPosition)
 * @param query       [numTokens, numHeads * headSize] (rows may be strided)
 * @param key         [numTokens, numKvHeads * headSize] or null
 * @param cosSinCache [maxPosition, rotaryDim]: cos of the rotaryDim/2 angles, then their sin; float32 or the
 *                    query's dtype (see {@link ropeCosSinCache})
 *
 * On CUDA a position outside [0, maxPosition) is found on the device: those tokens are left unrotated and the
 * next synchronize (toArray, synchronize) throws a RangeError.
 */
export function rotaryEmbedding(
  positions: Tensor,
  query: Tensor,
  key: Tensor | null,
  headSize: number,
  cosSinCache: Tensor,
  isNeox: boolean,
): void {
  const op = 'rotaryEmbedding';
  native.rotaryEmbedding(
    tensorArg(positions, op, 'positions'),
    tensorArg(query, op, 'query'),
    key === null || key === undefined ? null : tensorArg(key, op, 'key'),
    headSize,
    tensorArg(cosSinCache, op, 'cosSinCache'),
    isNeox,
  );
}

export interface RopeCacheOptions {
  /** default float32 */
  dtype?: FloatDType;
  /** default cpu */
  device?: Device;
  /** Hugging Face rope_scaling ('linear' or 'llama3'); default none */
  scaling?: RopeScaling | null;
}

/**
 * The [maxPosition, rotaryDim] cos/sin table for base `base` (Llama: 10000, Llama 3: 500000), computed as
 * vLLM and Hugging Face do: inverse frequencies and angles in float32, then cos and sin.
 */
export function ropeCosSinCache(rotaryDim: number, maxPosition: number, base: number, opts: RopeCacheOptions = {}): Tensor {
  const table = ropeCosSin(rotaryDim, maxPosition, base, opts.scaling ?? null);
  return Tensor.fromArray(table, [maxPosition, rotaryDim], opts);
}
