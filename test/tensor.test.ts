import { expect } from 'chai';

import { DTYPES, FLOAT_DTYPES, MiniVllmError, Tensor, backends, memoryStats } from '../lib/index.js';
import { roundTo } from '../lib/reference/index.js';
import { describeDevices, expectThrow, prng, randn, skipBecause } from './helpers.js';

// Float32 values that exercise every rounding path: ties, subnormals, overflow, signed zero, NaN.
const SPECIAL = [
  0,
  -0,
  1,
  -1,
  0.1,
  1 / 3,
  65504,
  65519,
  65520,
  1e5,
  -1e5,
  6.1e-5,
  6e-8,
  2.98e-8,
  1e-10,
  3.4e38,
  -3.4e38,
  1.1754944e-38,
  1e-40,
  Infinity,
  -Infinity,
  NaN,
  1.00048828125,
  1.0009765625,
  1.001953125,
  1.00390625,
  1.005859375,
].map(Math.fround);
// The same without f32 subnormals, first: CPU vectors without a subnormal take the hardware bf16 conversion,
// so NaN, infinities and overflow must be right on that path too.
const NORMAL_FIRST = [...SPECIAL.filter((v) => !(v !== 0 && Math.abs(v) < 1.1754944e-38)), ...SPECIAL];

describeDevices('Tensor', (device) => {
  for (const dtype of FLOAT_DTYPES) {
    it(`${dtype}: fromArray rounds to nearest even exactly as the reference, toArray gives it back`, () => {
      const values = Float32Array.from([...NORMAL_FIRST, ...randn(prng(1), 4096, 100)]);
      const t = Tensor.fromArray(values, [values.length], { dtype, device });
      const back = t.toArray();
      expect(back).to.be.instanceOf(Float32Array);
      for (let i = 0; i < values.length; ++i) {
        const want = roundTo(values[i]!, dtype);
        const got = back[i]!;
        if (Number.isNaN(want)) expect(got, `[${i}] ${values[i]}`).to.be.NaN;
        else expect(Object.is(got, want) || got === want, `[${i}] ${values[i]} -> ${got}, want ${want}`).to.be.true;
      }
      t.dispose();
    });
  }

  it('int32 round trip', () => {
    const data = Int32Array.from([0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 12345]);
    const t = Tensor.fromArray(data, [2, 3], { dtype: 'int32', device });
    const back = t.toArray();
    expect(back).to.be.instanceOf(Int32Array);
    expect(Array.from(back)).to.deep.equal(Array.from(data));
  });

  it("toArray into the caller's array: filled and returned; a wrong type or length is refused", () => {
    const t = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3], { device });
    const buf = new Float32Array(8).fill(-1);
    const into = buf.subarray(1, 7);
    expect(t.toArray(undefined, into)).to.equal(into);
    expect(Array.from(buf)).to.deep.equal([-1, 1, 2, 3, 4, 5, 6, -1]);
    expectThrow(() => t.toArray(undefined, new Float32Array(5)), RangeError, /array has 5 elements, tensor \[2, 3\]/);
    expectThrow(() => t.toArray(undefined, new Int32Array(6)), TypeError, /needs a Float32Array/);
    t.dispose();
  });

  it('shape, dtype, device, numel, strides', () => {
    for (const dtype of DTYPES) {
      const t = Tensor.empty([2, 3, 4], { dtype, device });
      expect(t.shape).to.deep.equal([2, 3, 4]);
      expect(t.strides).to.deep.equal([12, 4, 1]);
      expect(t.dtype).to.equal(dtype);
      expect(t.device).to.equal(device);
      expect(t.numel).to.equal(24);
      expect(t.isContiguous).to.equal(true);
      t.dispose();
    }
  });

  it('zeros, full and fill', () => {
    expect(Array.from(Tensor.zeros([3], { device }).toArray())).to.deep.equal([0, 0, 0]);
    expect(Array.from(Tensor.full([2], 2.5, { dtype: 'bfloat16', device }).toArray())).to.deep.equal([2.5, 2.5]);
    const t = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3], { device });
    t.narrow(1, 1, 1).fill(-7);
    expect(Array.from(t.toArray())).to.deep.equal([1, -7, 3, 4, -7, 6]);
  });

  it('view and narrow share memory; toArray of a strided view is dense', () => {
    const t = Tensor.fromArray([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [3, 4], { device });
    const v = t.view([4, 3]);
    expect(Array.from(v.toArray())).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const rows = t.narrow(0, 1, 2);
    expect(rows.shape).to.deep.equal([2, 4]);
    expect(Array.from(rows.toArray())).to.deep.equal([4, 5, 6, 7, 8, 9, 10, 11]);
    const cols = t.narrow(1, 1, 2);
    expect(cols.isContiguous).to.equal(false);
    expect(Array.from(cols.toArray())).to.deep.equal([1, 2, 5, 6, 9, 10]);
    expect(() => cols.view([6])).to.throw(RangeError, /contiguous/);
    rows.fill(0);
    expect(Array.from(t.toArray())).to.deep.equal([0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    t.dispose();
    expect(v.disposed).to.equal(true);
  });

  it('to(), clone() and copyFrom() copy, converting float dtypes', () => {
    const t = Tensor.fromArray([1.5, -2.25, 3.125], [3], { device });
    const other = device === 'cpu' ? 'cuda' : 'cpu';
    const same = t.to(device);
    expect(same).to.not.equal(t);
    expect(Array.from(same.toArray())).to.deep.equal([1.5, -2.25, 3.125]);
    const half = t.clone({ dtype: 'float16' });
    expect(half.dtype).to.equal('float16');
    expect(Array.from(half.toArray())).to.deep.equal([1.5, -2.25, 3.125]);
    const dst = Tensor.zeros([3], { dtype: 'bfloat16', device });
    dst.copyFrom(half);
    expect(Array.from(dst.toArray())).to.deep.equal([1.5, -2.25, 3.125]);
    if (other === 'cuda') return; // the cross-device copy is covered by the CUDA run of this suite
    const back = t.to('cpu');
    expect(Array.from(back.toArray())).to.deep.equal([1.5, -2.25, 3.125]);
  });

  it('write() copies host data into a view, rounding to the dtype, and checks type and length', () => {
    using t = Tensor.zeros([4, 3], { dtype: 'bfloat16', device });
    t.narrow(0, 1, 2).write(Float32Array.of(1, 2, 3, 4, 5, 1.00390625));
    expect(Array.from(t.toArray())).to.deep.equal([0, 0, 0, 1, 2, 3, 4, 5, 1, 0, 0, 0]);
    using cols = Tensor.zeros([2, 4], { device });
    cols.narrow(1, 1, 2).write(Float32Array.of(7, 8, 9, 10));
    expect(Array.from(cols.toArray())).to.deep.equal([0, 7, 8, 0, 0, 9, 10, 0]);
    using ids = Tensor.zeros([3], { dtype: 'int32', device });
    ids.write(Int32Array.of(5, -6, 7));
    expect(Array.from(ids.toArray())).to.deep.equal([5, -6, 7]);
    expectThrow(() => t.write(new Float32Array(11)), RangeError, /data has 11 elements, the tensor holds 12/);
    expectThrow(() => ids.write(new Float32Array(3)), TypeError, /int32 tensors take a Int32Array/);
  });

  it('dispose frees once; a disposed tensor throws on use; Symbol.dispose works', () => {
    const t = Tensor.zeros([4], { device });
    t.dispose();
    t.dispose(); // second call is a no-op, not a double free
    expect(t.disposed).to.equal(true);
    expectThrow(() => t.toArray(), TypeError, /disposed/);
    expectThrow(() => t.fill(1), TypeError, /disposed/);
    expectThrow(() => Tensor.zeros([4], { device }).copyFrom(t), TypeError, /disposed/);
    let inner: Tensor | undefined;
    {
      using scoped = Tensor.zeros([2], { device });
      inner = scoped;
      expect(scoped.disposed).to.equal(false);
    }
    expect(inner.disposed).to.equal(true);
  });

  it('memory is returned exactly once, by dispose() or by the finaliser', async function () {
    if (typeof globalThis.gc !== 'function') skipBecause(this, 'needs node --expose-gc (set in .mocharc.json)');
    const gcAll = async (): Promise<void> => {
      for (let i = 0; i < 3; ++i) {
        globalThis.gc!();
        await new Promise((r) => setImmediate(r));
      }
    };
    await gcAll();
    const held = () => {
      const { allocations, bytes } = memoryStats()[device];
      return { allocations, bytes };
    };
    const base = held();
    const kept = Array.from({ length: 8 }, () => Tensor.empty([1024], { device }));
    const views = kept.map((t) => t.narrow(0, 0, 10));
    for (let i = 0; i < 64; ++i) Tensor.empty([1024], { device }); // dropped at once
    expect(memoryStats()[device].allocations).to.be.at.least(base.allocations + 8);
    await gcAll();
    // the 64 dropped ones were finalised; the 8 kept ones (held also through views) were not
    expect(held()).to.deep.equal({ allocations: base.allocations + 8, bytes: base.bytes + 8 * 4096 });
    expect(memoryStats()[device].peakBytes).to.be.at.least(base.bytes + 8 * 4096);
    kept.forEach((t) => t.dispose());
    views.forEach((v) => v.dispose()); // disposing a view of freed memory frees nothing twice
    expect(held()).to.deep.equal(base);
    kept.length = 0;
    views.length = 0;
    await gcAll(); // finalisers of disposed storages must not free again
    expect(held()).to.deep.equal(base);
  });
});

describe('Tensor argument checks', () => {
  it('rejects bad shapes, dtypes, devices and data', () => {
    expectThrow(() => Tensor.empty([-1]), RangeError, /shape\[0\]/);
    expectThrow(() => Tensor.empty([1.5]), RangeError, /shape\[0\]/);
    expectThrow(() => Tensor.empty([2 ** 31]), RangeError, /shape\[0\]/);
    expectThrow(() => Tensor.empty([2 ** 30, 2 ** 30, 2 ** 30]), RangeError, /too large/);
    expectThrow(() => Tensor.empty([1, 1, 1, 1, 1, 1, 1, 1, 1]), RangeError, /at most 8/);
    expectThrow(() => Tensor.empty('3' as unknown as number[]), TypeError, /shape must be an array/);
    expectThrow(() => Tensor.empty([2], { dtype: 'float64' as never }), TypeError, /dtype/);
    expectThrow(() => Tensor.empty([2], { device: 'tpu' as never }), TypeError, /device/);
    expectThrow(() => Tensor.fromArray([1, 2, 3], [2]), RangeError, /3 elements but shape \[2\] needs 2/);
    expectThrow(() => Tensor.fromArray([1.5], [1], { dtype: 'int32' }), RangeError, /not an int32/);
    expectThrow(() => Tensor.fromArray(5 as unknown as number[]), TypeError, /data must be an array/);
    expectThrow(() => Tensor.zeros([3]).narrow(0, 2, 2), RangeError, /outside dim 0/);
    expectThrow(() => Tensor.zeros([3]).view([2]), RangeError, /does not hold 3/);
    expectThrow(
      () => Tensor.zeros([3]).copyFrom(Tensor.zeros([4])),
      RangeError,
      /dst shape \[3\] does not match src shape \[4\]/,
    );
    expectThrow(
      () => Tensor.zeros([3]).copyFrom(Tensor.zeros([3], { dtype: 'int32' })),
      TypeError,
      /cannot copy between int32 and float32/,
    );
  });

  it('a CUDA tensor without a usable device is a MiniVllmError, not a crash', function () {
    if (backends().cuda.available) skipBecause(this, 'CUDA is available here: this checks the error where it is not');
    expectThrow(() => Tensor.empty([4], { device: 'cuda' }), MiniVllmError, /CUDA is not available/);
  });
});
