// The step profiler: what it records (the ops it is given, with their shapes, inside steps, for maxSteps steps), that
// nothing else is recorded (it is passed down, never installed), and the summary of a trace.
import { expect } from 'chai';
import { type Device, ops, Tensor } from '../lib/index.js';
import { NULL_PROFILER } from '../lib/calls.js';
import { opsWith } from '../lib/ops/profiled.js';
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
    const o = opsWith(p);
    let trace: Trace;
    p.start();
    try {
      expectThrow(() => p.start(), Error, /already recording/);
      for (let s = 0; s < 3; ++s) {
        p.step(
          () => ({ batch: 4 }),
          () => {
            o.rmsNorm(out, x, w, 1e-5);
            p.range('mlp', () => o.siluAndMul(act, gu));
          },
        );
      }
    } finally {
      trace = p.stop();
    }
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
          t.fill(2, p);
          t.toArray(p);
          t.toArray(); // given no profiler: not recorded
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

  it('records only the calls it is given: plain ops are not recorded; two profilers record side by side', () => {
    using a = Tensor.fromArray([1, 2], [1, 2], { device });
    using out = Tensor.zeros([1, 2], { device });
    const p = new Profiler(device, 0, 5);
    const q = new Profiler(device, 0, 5);
    expect(opsWith(null), 'no profiler: the plain ops').to.equal(ops);
    expect(opsWith(NULL_PROFILER)).to.equal(ops);
    expect(opsWith(p), 'made once per profiler').to.equal(opsWith(p));
    const traces: Trace[] = [];
    p.start();
    q.start();
    try {
      ops.add(out, a, a); // what a CUDA graph capture runs: no profiler given
      opsWith(p).add(out, out, a);
      opsWith(q).add(out, out, a);
      opsWith(q).add(out, out, a);
    } finally {
      traces.push(p.stop(), q.stop());
    }
    opsWith(p).add(out, out, a); // after stop(): runs, not recorded
    expect(Array.from(out.toArray()), 'every call ran: 2a, then a added four times').to.deep.equal([6, 12]);
    // the host track (tid 1); on CUDA the device track has the same ops once more
    const adds = (t: Trace) => t.traceEvents.filter((e) => e.name === 'add' && e.tid === 1);
    expect(adds(traces[0]!)).to.have.length(1);
    expect(adds(traces[1]!)).to.have.length(2);
  });

  it('maxSteps must be a positive integer', () => {
    expectThrow(() => new Profiler(device, 0, 0), RangeError, /maxSteps must be a positive integer, got 0/);
  });
});
