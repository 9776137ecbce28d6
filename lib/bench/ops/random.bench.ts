// fillUniform, the dummy-weight generator: one 11008 x 4096 matrix per call, write-only (counted against the read
// limit).
import { type FloatDType, itemSize } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { Tensor } from '../../tensor.js';
import { type CaseList, type OpCase, dtypesFor } from './case.js';

function fillUniformCase(dtype: FloatDType): OpCase {
  const [rows, cols] = [11008, 4096];
  return {
    op: 'fillUniform',
    dtype,
    shape: `[${rows}, ${cols}]`,
    bytes: rows * cols * itemSize(dtype),
    setup: (device) => {
      const out = Tensor.empty([rows, cols], { dtype, device });
      return { run: () => ops.fillUniform(out, -1e-3, 1e-3, 1), free: () => out.dispose() };
    },
  };
}

export const cases: CaseList = (quick) => dtypesFor(quick).map(fillUniformCase);
