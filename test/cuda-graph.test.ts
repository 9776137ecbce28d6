// CudaGraph: stream capture and replay on a device, and the clear errors where there is none or a handle is not a
// graph. (The engine's decode graphs are tested in decode-graphs.test.ts.)
import { expect } from 'chai';
import { backends, CudaGraph, MiniVllmError, ops, Tensor } from '../lib/index.js';
import { native } from '../lib/native.js';
import { describeCuda, expectThrow, skipBecause } from './helpers.js';

const cuda = backends().cuda;

describe('CudaGraph without a device, and bad handles', () => {
  it('capture is a clear error where CUDA is not available', function () {
    if (cuda.available) skipBecause(this, 'CUDA is available here: this checks the error where it is not');
    expectThrow(
      () => CudaGraph.capture(() => 0),
      MiniVllmError,
      cuda.compiled ? /CUDA is not available/ : /no CUDA backend/,
    );
  });

  it('replay and destroy refuse an object that is not a graph', function () {
    if (!cuda.compiled) skipBecause(this, 'this addon was built without the CUDA backend');
    expectThrow(() => native.graphReplay({} as never), TypeError, /graphReplay: expected a graph handle from graphEnd/);
    expectThrow(() => native.graphDestroy(42 as never), TypeError, /graphDestroy: expected a graph handle/);
  });
});

describeCuda('CUDA stream capture', () => {
  it("records without running, replays with the buffers' new contents, and disposes once", () => {
    const a = Tensor.fromArray([1, 2, 3, 4], [1, 4], { device: 'cuda' });
    const b = Tensor.fromArray([10, 20, 30, 40], [1, 4], { device: 'cuda' });
    const out = Tensor.full([1, 4], -1, { device: 'cuda' });
    try {
      const { graph, result } = CudaGraph.capture(() => {
        ops.add(out, a, b);
        return out;
      });
      expect(result).to.equal(out);
      expect([...out.toArray()], 'capture does not run the kernels').to.deep.equal([-1, -1, -1, -1]);
      expect(graph.replay()).to.equal(true);
      expect([...out.toArray()]).to.deep.equal([11, 22, 33, 44]);
      a.write(Float32Array.from([5, 6, 7, 8]));
      expect(graph.replay()).to.equal(true);
      expect([...out.toArray()]).to.deep.equal([15, 26, 37, 48]);
      graph.dispose();
      graph.dispose();
      expect(graph.disposed).to.equal(true);
      expectThrow(() => graph.replay(), Error, /disposed/);
    } finally {
      [a, b, out].forEach((t) => t.dispose());
    }
  });

  it('a capture that copies from the host fails with an error, and the stream works after', () => {
    const t = Tensor.zeros([1, 4], { device: 'cuda' });
    try {
      expect(() => CudaGraph.capture(() => t.write(Float32Array.from([1, 2, 3, 4])))).to.throw(MiniVllmError);
      expect(() => CudaGraph.capture(() => CudaGraph.capture(() => 0)), 'captures do not nest').to.throw(
        RangeError,
        /already capturing/,
      );
      t.write(Float32Array.from([1, 2, 3, 4]));
      ops.add(t, t, t);
      expect([...t.toArray()]).to.deep.equal([2, 4, 6, 8]);
    } finally {
      t.dispose();
    }
  });
});
