// The step profiler: what it records (ops with their shapes, inside steps, for maxSteps steps), the ops layer's
// profiler it installs and gives back, and the summary of a trace.
import { expect } from 'chai';
import { type Device, ops, Tensor } from '../lib/index.js';
import { currentProfiler, NULL_PROFILER, withProfiler } from '../lib/calls.js';
import { rmsNorm, siluAndMul } from '../lib/ops/index.js';
import { Profiler, summarizeTrace, type Trace, type TraceEvent } from '../lib/profiler.js';
import { describeDevices, expectThrow } from './helpers.js';

describeDevices('Profiler', (device: Device) => {
  it('records every op inside a step with its shapes, for maxSteps steps, then nothing more', () => {
    using x = Tensor.full([4, 64], 1, { device });
    using w = Tensor.full([64], 1, { device });
    using out = Tensor.empty([4, 64], { device });
    using gu = Tensor.full([4, 128], 1, { device });
    using act = Tensor.empty([4, 64], { device });
    const p = new Profiler(device, 0, 2);
    let trace: Trace;
    p.start();
    try {
      expect(currentProfiler()).to.equal(p);
      expectThrow(() => new Profiler(device).start(), Error, /already recording/);
      for (let s = 0; s < 3; ++s) {
        p.step(
          () => ({ batch: 4 }),
          () => {
            rmsNorm(out, x, w, 1e-5);
            p.range('mlp', () => siluAndMul(act, gu));
          },
        );
      }
    } finally {
      trace = p.stop();
    }
    expect(currentProfiler(), 'stop() gives the ops layer back its null profiler').to.equal(NULL_PROFILER);
    expect(p.stepsRecorded).to.equal(2);
    const host = trace.traceEvents.filter((e) => e.ph === 'X' && e.tid === 1);
    const steps = host.filter((e) => e.name === 'step');
    expect(steps.map((e) => e.args)).to.deep.equal([
      { index: 0, batch: 4 },
      { index: 1, batch: 4 },
    ]);
    const norms = host.filter((e) => e.name === 'rmsNorm');
    expect(norms).to.have.length(2);
    expect(norms[0]!.args).to.deep.equal({
      out: 'float32[4, 64]',
      x: 'float32[4, 64]',
      weight: 'float32[64]',
      eps: 1e-5,
    });
    expect(host.filter((e) => e.name === 'siluAndMul').map((e) => e.args)).to.deep.equal([
      { out: 'float32[4, 64]', x: 'float32[4, 128]' },
      { out: 'float32[4, 64]', x: 'float32[4, 128]' },
    ]);
    const inside = (e: TraceEvent, s: TraceEvent) => e.ts! >= s.ts! && e.ts! + e.dur! <= s.ts! + s.dur!;
    for (const e of host.filter((x) => x.name !== 'step'))
      expect(
        steps.some((s) => inside(e, s)),
        `${e.name} inside a step`,
      ).to.equal(true);
    for (const e of host) expect(e.dur!).to.be.at.least(0);
    const dev = trace.traceEvents.filter((e) => e.ph === 'X' && e.tid === 2);
    if (device === 'cuda') {
      expect(dev.map((e) => e.name).sort()).to.deep.equal(host.map((e) => e.name).sort());
      for (const e of dev) expect(e.dur!).to.be.at.least(0);
    } else {
      expect(dev).to.have.length(0);
    }
    expect(trace.metadata).to.include({ steps: 2, device: `${device}:0` });
    const sum = summarizeTrace(trace);
    expect(sum).to.include({ steps: 'all', numSteps: 2, clock: device === 'cuda' ? 'device' : 'host' });
    expect(sum.ops.map((o) => [o.name, o.callsPerStep])).to.have.deep.members([
      ['rmsNorm', 1],
      ['siluAndMul', 1],
    ]);
    expect(sum.ops.reduce((t, o) => t + o.share, 0)).to.be.at.most(1 + 1e-9);
  });

  it("a tensor copy and a fill are recorded like ops, with the addon's argument names", () => {
    using t = Tensor.zeros([2, 3], { device });
    const p = new Profiler(device, 0, 1);
    let trace: Trace;
    p.start();
    try {
      p.step(
        () => ({}),
        () => {
          t.fill(2);
          t.toArray();
        },
      );
    } finally {
      trace = p.stop();
    }
    const host = trace.traceEvents.filter((e) => e.ph === 'X' && e.tid === 1 && e.cat === 'op');
    expect(host.map((e) => [e.name, e.args])).to.deep.equal([
      ['fill', { tensor: `float32[2, 3]`, value: 2 }],
      ['copyToHost', { src: 'float32[2, 3]', dst: 'Float32Array(6)' }],
    ]);
  });

  it(
    'withProfiler(NULL_PROFILER, fn): what runs inside is not recorded (how a CUDA graph capture runs its ' +
      'function)',
    () => {
      using a = Tensor.fromArray([1, 2], [1, 2], { device });
      using out = Tensor.zeros([1, 2], { device });
      const p = new Profiler(device, 0, 5);
      let trace: Trace;
      p.start();
      try {
        withProfiler(NULL_PROFILER, () => ops.add(out, a, a));
        expect(currentProfiler(), 'the profiler is back after the pause').to.equal(p);
        ops.add(out, out, a);
      } finally {
        trace = p.stop();
      }
      // the host track (tid 1); on CUDA the device track has the same op once more
      expect(trace.traceEvents.filter((e) => e.name === 'add' && e.tid === 1)).to.have.length(1);
    },
  );

  it('maxSteps must be a positive integer', () => {
    expectThrow(() => new Profiler(device, 0, 0), RangeError, /maxSteps must be a positive integer, got 0/);
  });
});
