// reshapeAndCache against the reference: strided key/value views of a fused qkv buffer written into their slots,
// padding skipped, every other slot untouched; bad slots and shapes throw naming the argument.
import { expect } from 'chai';

import { FLOAT_DTYPES, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import { describeKernel, drawDistinct, expectClose, expectThrow, prng, uniform } from '../helpers.js';

describeKernel('reshapeAndCache', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    it(`${dtype}: strided key/value views of a qkv buffer, padding slots skipped, other slots untouched`, () => {
      const rand = prng(11);
      const [tokens, kvHeads, headSize, blockSize, numBlocks] = [37, 4, 80, 16, 64];
      // qkv rows [q (8 heads) | k | v], as a fused projection writes them
      const row = (8 + 2 * kvHeads) * headSize;
      const qkv = Tensor.fromArray(uniform(rand, tokens * row, 1), [tokens, 8 + 2 * kvHeads, headSize], {
        dtype,
        device,
      });
      const key = qkv.narrow(1, 8, kvHeads);
      const value = qkv.narrow(1, 8 + kvHeads, kvHeads);
      const slots = drawDistinct(rand, numBlocks * blockSize, tokens);
      slots[3] = -1;
      slots[20] = -1;
      const slotT = Tensor.fromArray(slots, [tokens], { dtype: 'int32', device });
      const shape = [numBlocks, blockSize, kvHeads, headSize];
      const kc = Tensor.full(shape, 7, { dtype, device });
      const vc = Tensor.full(shape, -7, { dtype, device });
      ops.reshapeAndCache(key, value, kc, vc, slotT);
      const host = qkv.toArray();
      const k = new Float32Array(tokens * kvHeads * headSize);
      const v = new Float32Array(tokens * kvHeads * headSize);
      for (let t = 0; t < tokens; ++t)
        for (let i = 0; i < kvHeads * headSize; ++i) {
          k[t * kvHeads * headSize + i] = host[t * row + 8 * headSize + i]!;
          v[t * kvHeads * headSize + i] = host[t * row + (8 + kvHeads) * headSize + i]!;
        }
      const ek = new Float32Array(kc.numel).fill(7);
      const ev = new Float32Array(vc.numel).fill(-7);
      ref.reshapeAndCache(k, v, ek, ev, slots, { blockSize, numKvHeads: kvHeads, headSize });
      expectClose(kc.toArray(), ek, { atol: 0, rtol: 0 }, 'keyCache');
      expectClose(vc.toArray(), ev, { atol: 0, rtol: 0 }, 'valueCache');
      [qkv, slotT, kc, vc].forEach((x) => x.dispose());
    });
  }

  it('key and value with different row strides: a view of a fused buffer, and a dense tensor', () => {
    const rand = prng(12);
    const [tokens, kvHeads, headSize, blockSize, numBlocks] = [9, 2, 64, 16, 8];
    const slotElems = kvHeads * headSize;
    const wide = Tensor.fromArray(uniform(rand, tokens * 3 * slotElems, 1), [tokens, 3 * kvHeads, headSize], {
      device,
    });
    const key = wide.narrow(1, kvHeads, kvHeads); // row stride 3 * slotElems
    const value = Tensor.fromArray(uniform(rand, tokens * slotElems, 1), [tokens, kvHeads, headSize], { device });
    const slots = drawDistinct(rand, numBlocks * blockSize, tokens);
    const slotT = Tensor.fromArray(slots, [tokens], { dtype: 'int32', device });
    const shape = [numBlocks, blockSize, kvHeads, headSize];
    const kc = Tensor.zeros(shape, { device });
    const vc = Tensor.zeros(shape, { device });
    ops.reshapeAndCache(key, value, kc, vc, slotT);
    const w = wide.toArray();
    const k = new Float32Array(tokens * slotElems);
    for (let t = 0; t < tokens; ++t) k.set(w.subarray((3 * t + 1) * slotElems, (3 * t + 2) * slotElems), t * slotElems);
    const ek = new Float32Array(kc.numel);
    const ev = new Float32Array(vc.numel);
    ref.reshapeAndCache(k, value.toArray(), ek, ev, slots, { blockSize, numKvHeads: kvHeads, headSize });
    expectClose(kc.toArray(), ek, { atol: 0, rtol: 0 }, 'keyCache');
    expectClose(vc.toArray(), ev, { atol: 0, rtol: 0 }, 'valueCache');
    [wide, value, slotT, kc, vc].forEach((x) => x.dispose());
  });

  it('bad arguments throw naming the argument', () => {
    const kc = Tensor.zeros([4, 16, 2, 64], { device });
    const vc = Tensor.zeros([4, 16, 2, 64], { device });
    const k = Tensor.zeros([3, 2, 64], { device });
    const slots = Tensor.fromArray([0, 1, 2], [3], { dtype: 'int32', device });
    expect(() => ops.reshapeAndCache(k, k, kc, vc, Tensor.fromArray([0, 1], [2], { dtype: 'int32', device }))).to.throw(
      RangeError,
      /reshapeAndCache: key .*numTokens/,
    );
    expect(() => ops.reshapeAndCache(k, k, kc, Tensor.zeros([4, 16, 2, 32], { device }), slots)).to.throw(
      RangeError,
      /reshapeAndCache: valueCache .*keyCache shape/,
    );
    expect(() =>
      ops.reshapeAndCache(k, Tensor.zeros([3, 2, 64], { dtype: 'float16', device }), kc, vc, slots),
    ).to.throw(TypeError, /reshapeAndCache: value dtype float16/);
    expect(() => ops.reshapeAndCache(k, k, kc, vc, Tensor.fromArray([0, 1, 2], [3], { device }))).to.throw(
      TypeError,
      /slotMapping must have dtype int32/,
    );
    expect(() => ops.reshapeAndCache(k, k, kc, kc, slots)).to.throw(
      RangeError,
      /keyCache and valueCache must not overlap in memory/,
    );
    // a slot past the pool: CPU throws before writing; CUDA skips the token and throws at the next synchronize
    const bad = Tensor.fromArray([0, 64, 1], [3], { dtype: 'int32', device });
    expectThrow(
      () => {
        ops.reshapeAndCache(k, k, kc, vc, bad);
        kc.toArray();
      },
      RangeError,
      device === 'cpu'
        ? /reshapeAndCache: slotMapping\[1\] = 64 is past the cache/
        : /reshapeAndCache: a slotMapping entry is past the cache/,
    );
  });
});
