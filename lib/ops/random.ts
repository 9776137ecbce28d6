// The dummy weights' generator.
import type { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

const OPS = defineOps('random', {
  fillUniform: [
    'out: anyFloat[*], low: finite, high: finite, seed: uint32',
    (device) => [...zeros(device, [3, 16]), -1, 1, 3],
  ],
});

/**
 * Fills a contiguous float tensor with seeded uniform values in [low, high): element i depends only on (seed, i)
 * (a counter-based hash), so the CPU and CUDA write the same values whatever the thread count. Dummy weights.
 *
 * @param out  any shape, contiguous, float32/float16/bfloat16 (values rounded to it)
 * @param seed an integer in [0, 2^32)
 */
export function fillUniform(out: Tensor, low: number, high: number, seed: number): void {
  runOp(OPS.fillUniform, [out, low, high, seed]);
}
