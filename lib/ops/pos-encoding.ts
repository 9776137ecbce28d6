// Rotary position embedding (vLLM's pos_encoding_kernels) and the cos/sin table it reads.
import type { Device, FloatDType } from '../dtype.js';
import { ropeCosSin, type RopeScaling } from '../rope.js';
import { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('pos-encoding', {
  rotaryEmbedding: [
    'positions: int32[numTokens], query: float[numTokens, numHeads*headSize], ' +
      'key?: float[numTokens, numKvHeads*headSize], headSize: positiveInteger, ' +
      'cosSinCache: float[maxPosition, rotaryDim], isNeox: boolean',
    (device) => [
      Tensor.fromArray([0, 1, 2], [3], { dtype: 'int32', device }),
      ...zeros(device, [3, 4 * 8], [3, 2 * 8]),
      8,
      ropeCosSinCache(8, 16, 10000, { device }),
      true,
    ],
  ],
});

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
  runOp(OPS.rotaryEmbedding, [positions, query, key, headSize, cosSinCache, isNeox]);
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
export function ropeCosSinCache(
  rotaryDim: number,
  maxPosition: number,
  base: number,
  opts: RopeCacheOptions = {},
): Tensor {
  const table = ropeCosSin(rotaryDim, maxPosition, base, opts.scaling ?? null);
  return Tensor.fromArray(table, [maxPosition, rotaryDim], opts);
}
