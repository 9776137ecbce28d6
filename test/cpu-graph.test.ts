// CpuGraph: recording CPU ops and replaying them, what a recording refuses, and the engine's CPU decode graphs against
// eager execution (the decode-graph machinery itself, with a stand-in backend, is tested in decode-graphs.test.ts).
import { join } from 'node:path';
import { expect } from 'chai';
import { cpuGraphCaptureSizes, EngineCore } from '../lib/engine/index.js';
import { backends, CpuGraph, MiniVllmError, ops, Tensor } from '../lib/index.js';
import { type LoadedModel, loadModel } from '../lib/model/index.js';
import { native } from '../lib/native.js';
import type { Trace } from '../lib/profiler.js';
import { sampleRows } from '../lib/ops/sampling.js';
import { resolveSamplingParams, type SamplingParams } from '../lib/sampling/params.js';
import { expectThrow, prng, sharedModels, skipBecause } from './helpers.js';

const values = (t: Tensor) => [...t.toArray()];

describe('CpuGraph: record CPU ops once, replay them', () => {
  it("records without running, replays with the buffers' new contents, in order, and disposes once", () => {
    const a = Tensor.fromArray([1, 2, 3, 4], [1, 4]);
    const b = Tensor.fromArray([10, 20, 30, 40], [1, 4]);
    const sum = Tensor.full([1, 4], -1);
    const act = Tensor.full([1, 2], -1);
    try {
      const { graph, result } = CpuGraph.capture(() => {
        ops.add(sum, a, b);
        ops.siluAndMul(act, sum); // reads what the op before it wrote: order matters
        return act;
      });
      expect(result).to.equal(act);
      expect(values(sum), 'capture does not run the ops').to.deep.equal([-1, -1, -1, -1]);
      expect(graph.replay()).to.equal(true);
      expect(values(sum)).to.deep.equal([11, 22, 33, 44]);
      const silu = (x: number) => x / (1 + Math.exp(-x));
      const want = (s: number[]) => [silu(s[0]!) * s[2]!, silu(s[1]!) * s[3]!];
      values(act).forEach((v, i) => expect(v).to.be.closeTo(want([11, 22, 33, 44])[i]!, 1e-3));
      a.write(Float32Array.from([-5, 6, -7, 8]));
      graph.replay();
      expect(values(sum)).to.deep.equal([5, 26, 23, 48]);
      values(act).forEach((v, i) => expect(v).to.be.closeTo(want([5, 26, 23, 48])[i]!, 1e-3));
      graph.dispose();
      graph.dispose();
      expect(graph.disposed).to.equal(true);
      expectThrow(() => graph.replay(), Error, /disposed/);
    } finally {
      [a, b, sum, act].forEach((t) => t.dispose());
    }
  });

  it('refuses what cannot be recorded in order; the failed recording is dropped and ops run eagerly after', () => {
    const t = Tensor.zeros([1, 4]);
    const out = Tensor.zeros([1, 4]);
    try {
      const refused: Array<[string, () => unknown, RegExp]> = [
        ['allocating', () => Tensor.zeros([2]), /Storage \(allocating\): not allowed while a CPU graph is recorded/],
        ['copying from the host', () => t.write(Float32Array.of(1, 2, 3, 4)), /copyFromHost: not allowed/],
        ['reading back', () => t.toArray(), /copyToHost: not allowed/],
        ['filling', () => t.fill(3), /fill: not allowed/],
        [
          'an op of host arrays',
          () =>
            sampleRows(Float32Array.of(0.1, 0.9), 1, 2, {
              temperature: Float32Array.of(0),
              topK: Int32Array.of(0),
              topP: Float32Array.of(1),
              minP: Float32Array.of(0),
              uniform: Float64Array.of(0.5),
            }),
          /sampleRows: reads host arrays, which a CPU graph cannot record/,
        ],
        ['a nested capture', () => CpuGraph.capture(() => 0), /already recording a CPU graph/],
      ];
      for (const [what, fn, pattern] of refused) {
        expectThrow(
          () =>
            CpuGraph.capture(() => {
              ops.add(out, t, t);
              fn();
            }),
          MiniVllmError,
          pattern,
        );
        // nothing recorded before the refusal runs later, and this thread runs ops eagerly again
        t.write(Float32Array.of(1, 2, 3, 4));
        ops.add(out, t, t);
        expect(values(out), `after refusing ${what}`).to.deep.equal([2, 4, 6, 8]);
      }
      expectThrow(
        () =>
          CpuGraph.capture(() => {
            throw new RangeError('from the recorded function');
          }),
        RangeError,
        /from the recorded function/,
      );
      ops.add(out, out, t);
      expect(values(out), 'an exception in the function drops the recording too').to.deep.equal([3, 6, 9, 12]);
    } finally {
      t.dispose();
      out.dispose();
    }
  });

  it('a bad op is refused when recorded, with the same error as run eagerly', () => {
    const a = Tensor.zeros([1, 4]);
    const b = Tensor.zeros([1, 3]);
    try {
      expectThrow(() => CpuGraph.capture(() => ops.add(a, a, b)), RangeError, /add/);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('a replay after a tensor it reads was disposed is an error, never a read of freed memory', () => {
    const a = Tensor.fromArray([1, 2, 3, 4], [1, 4]);
    const out = Tensor.zeros([1, 4]);
    try {
      const { graph } = CpuGraph.capture(() => ops.add(out, a, a));
      graph.replay();
      expect(values(out)).to.deep.equal([2, 4, 6, 8]);
      a.dispose();
      expectThrow(() => graph.replay(), TypeError, /a tensor the graph reads was disposed; capture it again/);
      graph.dispose();
    } finally {
      out.dispose();
    }
  });

  it('an op on a CUDA tensor is refused while recording, and the recording dropped', function () {
    if (!backends().cuda.available) skipBecause(this, 'no CUDA device (real or emulated) to make a CUDA tensor on');
    const g = Tensor.fromArray([1, 2, 3, 4], [1, 4], { device: 'cuda' });
    const out = Tensor.zeros([1, 4], { device: 'cuda' });
    try {
      expectThrow(
        () => CpuGraph.capture(() => ops.add(out, g, g)),
        MiniVllmError,
        /add: not allowed while a CPU graph/,
      );
      ops.add(out, g, g);
      expect(values(out), 'the op runs on the device after the refusal').to.deep.equal([2, 4, 6, 8]);
    } finally {
      g.dispose();
      out.dispose();
    }
  });

  it('the native calls refuse a handle that is not a CPU graph', () => {
    expectThrow(() => native.cpuGraphReplay({} as never), TypeError, /cpuGraphReplay: expected a graph handle/);
    expectThrow(() => native.cpuGraphDestroy(42 as never), TypeError, /cpuGraphDestroy: expected a graph handle/);
    expectThrow(() => native.cpuGraphEnd(), MiniVllmError, /cpuGraphEnd: this thread is not recording/);
  });
});

const models = sharedModels();
const MODEL = models ? join(models, 'stories260K', 'stories260K.bin') : 'dummy:stories15M';
const modelName = models ? 'stories260K' : 'dummy:stories15M (../shared/models is absent)';

describe(`the engine's CPU decode graphs (${modelName})`, function () {
  let m: LoadedModel;
  before(async () => {
    m = await loadModel(MODEL, { device: 'cpu', dtype: 'float32' });
  });
  after(() => m?.model.dispose());

  /** Runs 9 requests of mixed lengths on 6 slots to the end: batches of every size from 6 down to 1. */
  function run(core: EngineCore, each?: (step: number) => void) {
    const rand = prng(1234);
    const vocab = core.loaded.config.vocabSize;
    const params: SamplingParams[] = [];
    for (let i = 0; i < 9; ++i) {
      const prompt = [1, ...Array.from({ length: 2 + Math.floor(rand() * 40) }, () => 3 + Math.floor(rand() * 400))];
      const p: SamplingParams = {
        temperature: 0,
        maxTokens: 5 + Math.floor(rand() * 40),
        ignoreEos: true,
        logprobs: 0,
      };
      params.push(p);
      core.add({ requestId: String(i), promptTokenIds: prompt, params: resolveSamplingParams(p, vocab) });
    }
    const tokens = params.map(() => [] as number[]);
    const logprobs = params.map(() => [] as number[]);
    let steps = 0;
    while (core.hasUnfinished) {
      for (const o of core.step()) {
        tokens[Number(o.requestId)]!.push(o.token);
        logprobs[Number(o.requestId)]!.push(o.logprobs!.logprob);
      }
      each?.(++steps);
    }
    const kv = [...core.kv.key, ...core.kv.value].map((t) => Buffer.from((t.toArray() as Float32Array).buffer));
    return { tokens, logprobs, kv, steps };
  }

  it('are on by default, one per batch size when first used, and give the eager engine its tokens, bit for bit', () => {
    const opts = { maxNumSeqs: 6, maxModelLen: 128, kvCacheBytes: 64 * 16 * m.model.kvBytesPerSlot };
    const zero = (core: EngineCore) => [...core.kv.key, ...core.kv.value].forEach((t) => t.fill(0));
    const eagerCore = EngineCore.fromLoaded(m, { ...opts, enforceEager: true });
    let eager: ReturnType<typeof run>;
    try {
      expect(eagerCore.stats().cudaGraphs).to.equal(null);
      zero(eagerCore);
      eager = run(eagerCore);
    } finally {
      eagerCore.dispose();
    }
    const core = EngineCore.fromLoaded(m, opts);
    try {
      const g0 = core.stats().cudaGraphs!;
      expect(g0.kind).to.equal('cpu');
      expect(g0.sizes, 'every batch size, no padding').to.deep.equal(cpuGraphCaptureSizes(6));
      expect(g0.captures, 'nothing recorded before it is needed').to.equal(0);
      zero(core);
      const got = run(core, (step) => {
        // a step larger than any before replaces the activation buffers: the graphs are recorded again
        if (step === 12) m.model.reserve(2048, 32);
      });
      expect(got.tokens).to.deep.equal(eager.tokens);
      expect(got.logprobs, 'logits bit-equal').to.deep.equal(eager.logprobs);
      got.kv.forEach((b, i) => expect(b.equals(eager.kv[i]!), `KV pool ${i}`).to.equal(true));
      const g = core.stats().cudaGraphs!;
      expect(g.replays).to.be.greaterThan(got.steps / 2);
      expect(g.captures, 'each of the 6 sizes at least once, and again after the buffers moved').to.be.within(7, 12);
    } finally {
      core.dispose();
    }
  });

  it('profiled, a replayed decode step is one cpuGraphReplay op naming its batch', () => {
    const core = EngineCore.fromLoaded(m, { maxNumSeqs: 4, maxModelLen: 128 });
    let trace: Trace;
    core.startProfile(1000);
    try {
      run(core);
    } finally {
      trace = core.stopProfile();
      core.dispose();
    }
    const replays = trace.traceEvents.filter((e) => e.name === 'cpuGraphReplay');
    expect(replays).to.have.length(core.stats().cudaGraphs!.replays);
    expect(replays[0]!.cat).to.equal('op');
    expect(replays.map((e) => e.args!['batch'])).to.include.members([4, 3, 2, 1]);
    for (const e of replays) expect(e.args!['batch']).to.equal(e.args!['numSeqs']);
    expect(
      trace.traceEvents.some((e) => e.name === 'pagedAttention'),
      'prefill steps still run op by op',
    ).to.equal(true);
  });
});
