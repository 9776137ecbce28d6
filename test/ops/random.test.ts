// ops.fillUniform (the dummy weights' generator) against its reference.
import { expect } from 'chai';
import { type Device, ops, Tensor } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import { describeKernel, expectThrow } from '../helpers.js';

describeKernel('fillUniform', (device: Device) => {
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    it(`${dtype}: every element is the reference value rounded to the dtype, on a row range of a bigger tensor`, () => {
      using t = Tensor.full([300, 70], 7, { dtype, device });
      ops.fillUniform(t.narrow(0, 100, 150), -0.5, 2, 1234);
      const got = t.toArray();
      const want = ref.fillUniform(150 * 70, -0.5, 2, 1234, dtype);
      for (let r = 0; r < 300; ++r) {
        for (let c = 0; c < 70; ++c) {
          const expected = r < 100 || r >= 250 ? 7 : want[(r - 100) * 70 + c]!;
          if (got[r * 70 + c] !== expected) expect.fail(`[${r}, ${c}]: got ${got[r * 70 + c]}, want ${expected}`);
        }
      }
    });
  }

  it('is uniform in [low, high): bounds, mean, spread; another seed gives other values', () => {
    using t = Tensor.empty([1 << 18], { device });
    ops.fillUniform(t, -1e-3, 1e-3, 5);
    const a = t.toArray();
    let min = Infinity,
      max = -Infinity,
      sum = 0,
      sq = 0;
    for (const v of a) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
      sq += v * v;
    }
    const n = a.length;
    expect(min).to.be.at.least(-1e-3);
    expect(max).to.be.below(1e-3);
    expect(Math.abs(sum / n)).to.be.below((5 * (1e-3 / Math.sqrt(3))) / Math.sqrt(n));
    expect(Math.sqrt(sq / n)).to.be.closeTo(1e-3 / Math.sqrt(3), 1e-5);
    ops.fillUniform(t, -1e-3, 1e-3, 6);
    const b = t.toArray();
    let same = 0;
    for (let i = 0; i < n; ++i) if (a[i] === b[i]) same++;
    expect(same).to.be.below(n / 1000);
  });

  it('rejects bad arguments', () => {
    using t = Tensor.empty([4, 4], { device });
    expectThrow(
      () => ops.fillUniform(t, 1, 1, 0),
      RangeError,
      /fillUniform: need finite low < high, got low = 1, high = 1/,
    );
    expectThrow(() => ops.fillUniform(t, 0, Infinity, 0), RangeError, /finite low < high/);
    expectThrow(() => ops.fillUniform(t, 0, 1, -1), RangeError, /seed must be an integer in \[0, 2\^32\), got -1/);
    expectThrow(() => ops.fillUniform(t.narrow(1, 0, 2), 0, 1, 0), RangeError, /fillUniform: out must be contiguous/);
    using ids = Tensor.empty([4], { dtype: 'int32', device });
    expectThrow(() => ops.fillUniform(ids, 0, 1, 0), TypeError, /fillUniform: out/);
  });
});
