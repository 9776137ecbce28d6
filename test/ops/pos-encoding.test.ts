// rotaryEmbedding (NeoX and GPT-J styles, partial rotary, float32 or storage-dtype tables) against the reference,
// bad positions and arguments, and the cos/sin table.
import { expect } from 'chai';

import { FLOAT_DTYPES, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import {
  TOL,
  describeKernel,
  expectClose,
  expectThrow,
  prng,
  randint,
  randn,
  upload,
  describeEachCpuIsa,
} from '../helpers.js';

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const MAX_POSITION = 8192;
const BASE = 10000;

interface Case {
  tokens: number;
  heads: number;
  kvHeads: number | null; // null: no key
  headSize: number;
  rotaryDim: number;
}

const CASES: Case[] = [];
for (const tokens of [7, 83])
  for (const heads of [7, 17])
    for (const headSize of [64, 80, 128, 256])
      CASES.push({ tokens, heads, kvHeads: heads === 17 ? 1 : heads, headSize, rotaryDim: headSize });
CASES.push({ tokens: 83, heads: 17, kvHeads: 17, headSize: 128, rotaryDim: 64 }); // partial rotary
CASES.push({ tokens: 7, heads: 7, kvHeads: 7, headSize: 80, rotaryDim: 32 });
CASES.push({ tokens: 7, heads: 7, kvHeads: null, headSize: 64, rotaryDim: 64 }); // query only

describeKernel('rotaryEmbedding', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    for (const isNeox of [true, false]) {
      for (const c of CASES) {
        const style = isNeox ? 'neox' : 'gptj';
        const name =
          `${dtype} ${style} tokens ${c.tokens} heads ${c.heads}/${c.kvHeads ?? '-'} head ${c.headSize} ` +
          `rot ${c.rotaryDim}`;
        it(name, () => {
          const rand = prng(c.tokens * 131 + c.heads * 17 + c.headSize + (isNeox ? 1 : 0));
          // the cache in the query's dtype for some cases, float32 for others: both are accepted
          const cacheDtype = c.headSize === 128 ? dtype : 'float32';
          const cache = ops.ropeCosSinCache(c.rotaryDim, MAX_POSITION, BASE, { dtype: cacheDtype, device });
          const cacheValues = cache.toArray();
          const posValues = randint(rand, c.tokens, 0, MAX_POSITION);
          posValues[0] = MAX_POSITION - 1; // the last row is reachable
          const positions = Tensor.fromArray(posValues, [c.tokens], { dtype: 'int32', device });
          const [q, qs] = upload(
            randn(rand, c.tokens * c.heads * c.headSize),
            [c.tokens, c.heads * c.headSize],
            dtype,
            device,
          );
          const key = c.kvHeads
            ? upload(randn(rand, c.tokens * c.kvHeads * c.headSize), [c.tokens, c.kvHeads * c.headSize], dtype, device)
            : null;
          const expected = ref.rotaryEmbedding(
            posValues,
            qs,
            key ? key[1] : null,
            c.headSize,
            cacheValues,
            c.rotaryDim,
            isNeox,
            dtype,
          );
          ops.rotaryEmbedding(positions, q, key ? key[0] : null, c.headSize, cache, isNeox);
          expectClose(q.toArray(), expected.query, TOL[dtype], 'query');
          if (key) expectClose(key[0].toArray(), expected.key!, TOL[dtype], 'key');
          [cache, positions, q, ...(key ? [key[0]] : [])].forEach((t) => t.dispose());
        });
      }
    }

    it(`${dtype} query and key as strided views of one qkv buffer`, () => {
      const rand = prng(99);
      const tokens = 5;
      const heads = 4;
      const kvHeads = 2;
      const headSize = 64;
      const width = (heads + 2 * kvHeads) * headSize;
      const [qkv, all] = upload(randn(rand, tokens * width), [tokens, width], dtype, device);
      const q = qkv.narrow(1, 0, heads * headSize);
      const k = qkv.narrow(1, heads * headSize, kvHeads * headSize);
      const slice = (from: number, len: number): Float32Array => {
        const out = new Float32Array(tokens * len);
        for (let t = 0; t < tokens; ++t) out.set(all.subarray(t * width + from, t * width + from + len), t * len);
        return out;
      };
      const posValues = Int32Array.from([0, 1, 2, 100, 4000]);
      const positions = Tensor.fromArray(posValues, [tokens], { dtype: 'int32', device });
      const cache = ops.ropeCosSinCache(headSize, 4096, BASE, { device });
      const expected = ref.rotaryEmbedding(
        posValues,
        slice(0, heads * headSize),
        slice(heads * headSize, kvHeads * headSize),
        headSize,
        cache.toArray(),
        headSize,
        true,
        dtype,
      );
      ops.rotaryEmbedding(positions, q, k, headSize, cache, true);
      expectClose(q.toArray(), expected.query, TOL[dtype], 'query view');
      expectClose(k.toArray(), expected.key!, TOL[dtype], 'key view');
      // v, the last part of each row, is untouched
      const v = qkv.narrow(1, (heads + kvHeads) * headSize, kvHeads * headSize).toArray();
      expect(Array.from(v)).to.deep.equal(Array.from(slice((heads + kvHeads) * headSize, kvHeads * headSize)));
      [qkv, positions, cache].forEach((t) => t.dispose());
    });
  }

  it('position 0 is the identity', () => {
    const cache = ops.ropeCosSinCache(64, 16, BASE, { device });
    const [q, qs] = upload(randn(prng(5), 2 * 64), [2, 64], 'float32', device);
    const positions = Tensor.fromArray([0, 0], [2], { dtype: 'int32', device });
    ops.rotaryEmbedding(positions, q, null, 64, cache, true);
    expectClose(q.toArray(), qs, { atol: 0, rtol: 0 }, 'query');
  });

  it('a position outside the cache throws a RangeError', () => {
    const cache = ops.ropeCosSinCache(64, 16, BASE, { device });
    const q = Tensor.zeros([2, 64], { device });
    for (const bad of [16, -1]) {
      const positions = Tensor.fromArray([0, bad], [2], { dtype: 'int32', device });
      // CPU checks before computing; CUDA finds it on the device and reports at the next synchronize.
      expectThrow(
        () => {
          ops.rotaryEmbedding(positions, q, null, 64, cache, true);
          q.toArray();
        },
        RangeError,
        /rotaryEmbedding: .*position.*outside \[0, /,
      );
    }
  });
});

describe('ropeCosSinCache', () => {
  it('matches cos/sin of position × base^(-2i/d), cos half then sin half', () => {
    const d = 8;
    const table = ops.ropeCosSinCache(d, 5, 10000).toArray();
    for (let p = 0; p < 5; ++p)
      for (let i = 0; i < d / 2; ++i) {
        const angle = p / 10000 ** ((2 * i) / d);
        expect(table[p * d + i]).to.be.closeTo(Math.cos(angle), 1e-6);
        expect(table[p * d + d / 2 + i]).to.be.closeTo(Math.sin(angle), 1e-6);
      }
  });

  it('rejects bad sizes', () => {
    expect(() => ops.ropeCosSinCache(7, 10, 10000)).to.throw(RangeError, /rotaryDim/);
    expect(() => ops.ropeCosSinCache(8, 0, 10000)).to.throw(RangeError, /maxPosition/);
    expect(() => ops.ropeCosSinCache(8, 10, NaN)).to.throw(RangeError, /base/);
  });
});

describeEachCpuIsa('rotaryEmbedding on cpu: bad positions', () => {
  it('positions out of range on the CPU throw before anything is written', () => {
    const rand = prng(7);
    for (let n = 0; n < 200; ++n) {
      const bad = pick(rand, [-1, 16, 17, 2 ** 31 - 1, -(2 ** 31)]);
      const positions = Tensor.fromArray([0, bad, 1], [3], { dtype: 'int32' });
      const q = Tensor.full([3, 8], 1);
      expect(() => ops.rotaryEmbedding(positions, q, null, 8, ops.ropeCosSinCache(8, 16, 10000), false)).to.throw(
        RangeError,
        /rotaryEmbedding: positions\[1\] = -?\d+ is outside \[0, 16\)/,
      );
      expect(Array.from(q.toArray()).every((v) => v === 1)).to.equal(true);
    }
  });
});
