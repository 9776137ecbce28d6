// What a quantised model's logits must be when its linear layers run the CPU's integer GEMV, which rounds every input
// to 8 bits per 32 values (csrc/cpu/quant_dots.h): the float64 forward with that rounding reproduced, once for every
// way that fp32 noise may round the values that sit on a rounding boundary.
import { expect } from 'chai';
import type { LlamaConfig } from '../lib/model/config.js';
import { ambiguousQ8Values, llamaForward, type ReferenceWeights, roundActivationsQ8 } from '../lib/reference/index.js';

/** More than this many ways to round means more than 6 ambiguous values: the check would say little, so it fails. */
const MAX_VARIANTS = 64;

/**
 * The float64 forward with every linear input rounded as the GEMV rounds it, for each way of rounding the values whose
 * rounding is ambiguous (ref.ambiguousQ8Values): the n-th such value met rounds the other way where bit n of the
 * variant is set. A value changed upstream changes what is met downstream, so the variants are grown as they are met.
 */
export function gemvReferences(c: LlamaConfig, weights: ReferenceWeights, tokens: readonly number[]): Float64Array[][] {
  const variants: Float64Array[][] = [];
  let bits = 0; // how many ambiguous values some variant met: every mask below 2^bits is a way to round them
  for (let mask = 0; mask < 2 ** bits || mask === 0; ++mask) {
    let met = 0;
    // q/k/v (and gate/up) read one input, which the fused GEMV rounds once: round each input array once
    const rounded = new WeakMap<Float64Array, Float64Array>();
    variants.push(
      llamaForward(c, weights, tokens, {
        linearInput: (x) => {
          const done = rounded.get(x);
          if (done) return done;
          const scales = new Float64Array(x.length / 32);
          const y = roundActivationsQ8(x, scales);
          for (const i of ambiguousQ8Values(x)) {
            if ((mask >> met++) & 1) {
              // the other neighbour of |x·127/amax|: one step towards or away from zero
              const d = scales[Math.floor(i / 32)]!;
              const v = Math.abs(x[i]! / d);
              const q = Math.abs(y[i]! / d) === Math.floor(v) ? Math.floor(v) + 1 : Math.floor(v);
              y[i] = Math.sign(x[i]!) * d * q;
            }
          }
          rounded.set(x, y);
          return y;
        },
      }),
    );
    bits = Math.max(bits, met);
    expect(2 ** bits, `ways to round the ${bits} ambiguous values`).to.be.at.most(MAX_VARIANTS);
  }
  return variants;
}

/**
 * The GEMV path's logits against gemvReferences: one way of rounding must give every position's logits within 1e-5 of
 * the largest logit (fp32 noise: about 3e-7 of it is seen; a flipped rounding moves logits by up to 3%).
 * Before: 5% of the largest logit.
 */
export function expectGemvLogits(got: Float32Array[], variants: Float64Array[][], label: string): void {
  const range = Math.max(...variants[0]!.map((l) => Math.max(...l.map(Math.abs))));
  const worst = variants.map((want) => {
    expect(got).to.have.length(want.length);
    let w = 0;
    got.forEach((l, p) => l.forEach((v, i) => (w = Math.max(w, Math.abs(v - want[p]![i]!)))));
    return w;
  });
  const best = Math.min(...worst);
  expect(
    best / range,
    `${label}: the closest of ${variants.length} ways to round, over ${got.length} positions`,
  ).to.be.at.most(1e-5);
}
