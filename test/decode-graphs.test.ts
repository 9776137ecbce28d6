// Decode graphs: the batch-size ladder, the static inputs and their padding, and replay against eager execution.
// On the CPU the graph path runs with a recording backend (a "graph" is the forward function itself, replayed with
// the arguments it was captured with), which checks everything but the CUDA capture: what each graph reads is staged
// in its static buffer, padding rows change nothing, stale graphs are captured again. On CUDA the same engine test
// runs with real stream capture (CudaGraph itself is tested in cuda-graph.test.ts).
import { join } from 'node:path';
import { expect } from 'chai';
import {
  type CapturedGraph,
  cudaGraphCaptureSizes,
  EngineCore,
  type GraphBackend,
  graphSizeFor,
  isUniformDecode,
  resolveEngineOptions,
  type ScheduledSequence,
  Sequence,
  StepInputs,
} from '../lib/engine/index.js';
import { type FloatDType, Tensor } from '../lib/index.js';
import { type LoadedModel, loadModel } from '../lib/model/index.js';
import { summarizeTrace, type Trace } from '../lib/profiler.js';
import { memoryStats } from '../lib/runtime.js';
import { resolveSamplingParams, type SamplingParams } from '../lib/sampling/params.js';
import { describeCuda, emulated, expectThrow, prng, sharedModels } from './helpers.js';

const models = sharedModels();
const MODEL = models ? join(models, 'stories260K', 'stories260K.bin') : 'dummy:stories15M';
const modelName = models ? 'stories260K' : 'dummy:stories15M (../shared/models is absent)';

describe('decode graph batch sizes', () => {
  it('1, 2, 4, 8, then every 16 up to the largest batch, which is always captured', () => {
    const cases: Array<[number, number[]]> = [
      [1, [1]],
      [3, [1, 2, 3]],
      [8, [1, 2, 4, 8]],
      [16, [1, 2, 4, 8, 16]],
      [20, [1, 2, 4, 8, 16, 20]],
      [100, [1, 2, 4, 8, 16, 32, 48, 64, 80, 96, 100]],
    ];
    for (const [max, want] of cases) expect(cudaGraphCaptureSizes(max), `max ${max}`).to.deep.equal(want);
    const s256 = cudaGraphCaptureSizes(256);
    expect(s256).to.have.length(4 + 16);
    expect(s256.slice(4)).to.deep.equal(Array.from({ length: 16 }, (_, i) => 16 * (i + 1)));
    for (const bad of [0, -1, 1.5, NaN])
      expectThrow(() => cudaGraphCaptureSizes(bad), RangeError, /maxBatch must be a positive integer/);
  });

  it('a batch runs the graph of the next size up, or none past the largest', () => {
    const sizes = cudaGraphCaptureSizes(64);
    const cases: Array<[number, number | null]> = [
      [1, 1],
      [2, 2],
      [3, 4],
      [5, 8],
      [9, 16],
      [16, 16],
      [17, 32],
      [63, 64],
      [64, 64],
      [65, null],
    ];
    for (const [n, want] of cases) expect(graphSizeFor(sizes, n), `batch ${n}`).to.equal(want);
  });

  it('only steps where every sequence runs and samples one token are graph steps', () => {
    const seq = new Sequence('a', [1, 2, 3], resolveSamplingParams({}, 32), 32);
    const s = (numTokens: number, sample: boolean): ScheduledSequence => ({ seq, start: 0, numTokens, sample });
    expect(isUniformDecode([s(1, true), s(1, true)])).to.equal(true);
    expect(isUniformDecode([s(1, true), s(3, true)]), 'a prefill in the batch').to.equal(false);
    expect(isUniformDecode([s(1, false)]), 'a one-token prefill chunk that does not sample').to.equal(false);
    expect(isUniformDecode([])).to.equal(false);
  });

  it('engine options: enforceEager and cudaGraphCaptureSizes are checked, sizes sorted and deduplicated', () => {
    expect(resolveEngineOptions({}).enforceEager).to.equal(false);
    expect(resolveEngineOptions({}).cudaGraphCaptureSizes).to.equal(null);
    expect(resolveEngineOptions({ cudaGraphCaptureSizes: [8, 1, 4, 8] }).cudaGraphCaptureSizes).to.deep.equal([
      1, 4, 8,
    ]);
    expectThrow(
      () => resolveEngineOptions({ enforceEager: 'yes' as unknown as boolean }),
      TypeError,
      /enforceEager must be a boolean, got/,
    );
    expectThrow(
      () => resolveEngineOptions({ cudaGraphCaptureSizes: [] }),
      TypeError,
      /cudaGraphCaptureSizes must be a non-empty array of numbers/,
    );
    expectThrow(
      () => resolveEngineOptions({ cudaGraphCaptureSizes: 8 as unknown as number[] }),
      TypeError,
      /cudaGraphCaptureSizes must be a non-empty array/,
    );
    expectThrow(
      () => resolveEngineOptions({ cudaGraphCaptureSizes: [0] }),
      RangeError,
      /integers in \[1, 256\].*got 0/,
    );
    expectThrow(() => resolveEngineOptions({ cudaGraphCaptureSizes: [2.5] }), RangeError, /got 2.5/);
    expectThrow(
      () => resolveEngineOptions({ maxNumSeqs: 8, cudaGraphCaptureSizes: [16] }),
      RangeError,
      /integers in \[1, 8\].*got 16/,
    );
    expectThrow(
      () => resolveEngineOptions({ maxNumBatchedTokens: 4, cudaGraphCaptureSizes: [8] }),
      RangeError,
      /integers in \[1, 4\].*got 8/,
    );
  });
});

describe('the step inputs: one static buffer for eager steps and decode graphs, padded rows', () => {
  const bs = 4,
    width = 5,
    M = 8;
  const params = resolveSamplingParams({}, 100);
  /** A sequence of n tokens (ids 10, 11, ...) whose blocks are `table`, about to decode its last token. */
  const decoding = (n: number, table: number[]): ScheduledSequence => {
    const seq = new Sequence(
      `s${n}`,
      Array.from({ length: n }, (_, i) => 10 + i),
      params,
      100,
    );
    seq.blockTable = table;
    return { seq, start: n - 1, numTokens: 1, sample: true };
  };

  it("stages each sequence's token, position, slot, context and table, and pads up to the graph size", () => {
    const inputs = new StepInputs({ maxNumBatchedTokens: M, maxNumSeqs: M, maxBlocksPerSeq: width }, 'cpu');
    try {
      const seqs = [decoding(6, [7, 3]), decoding(1, [9]), decoding(13, [0, 1, 2, 4])];
      const n = inputs.stageDecode(seqs, 4, bs);
      expect(n, 'ints the graph of 4 reads').to.equal(6 * M + 1 + 4 * width);
      expect([...inputs.field('tokenIds', 4)]).to.deep.equal([15, 10, 22, 0]);
      expect([...inputs.field('positions', 4)]).to.deep.equal([5, 0, 12, 0]);
      // position 5 is block 1 (id 3) offset 1; position 0 block 0 (id 9); position 12 block 3 (id 4) offset 0; padding
      // -1
      expect([...inputs.field('slotMapping', 4)]).to.deep.equal([3 * bs + 1, 9 * bs, 4 * bs, -1]);
      expect([...inputs.field('seqLens', 4)]).to.deep.equal([6, 1, 13, 1]);
      // what the graph of 4 reads of these two: one row per sequence
      expect([...inputs.field('queryStartLoc', 5)]).to.deep.equal([0, 1, 2, 3, 4]);
      expect([...inputs.field('logitsIndices', 4)]).to.deep.equal([0, 1, 2, 3]);
      const tables = inputs.field('blockTables', 4 * width);
      expect([...tables.subarray(0, 2)]).to.deep.equal([7, 3]);
      expect(tables[width]).to.equal(9);
      expect([...tables.subarray(2 * width, 2 * width + 4)]).to.deep.equal([0, 1, 2, 4]);
      expect(tables[3 * width], 'a padding row reads block 0').to.equal(0);

      inputs.upload(n);
      expect([...inputs.device.toArray().subarray(0, n)]).to.deep.equal([...inputs.host.subarray(0, n)]);

      // a smaller batch next: the row that held a sequence is padding again
      inputs.stageDecode([decoding(2, [5])], 2, bs);
      expect([...inputs.field('slotMapping', 2)]).to.deep.equal([5 * bs + 1, -1]);
      expect([...inputs.field('seqLens', 2)]).to.deep.equal([2, 1]);
      expect([...inputs.field('tokenIds', 2)]).to.deep.equal([11, 0]);
    } finally {
      inputs.dispose();
    }
  });

  it('the forward inputs of a graph are views of the one buffer, sized for the graph and the longest context', () => {
    const inputs = new StepInputs({ maxNumBatchedTokens: M, maxNumSeqs: M, maxBlocksPerSeq: width }, 'cpu');
    try {
      const f = inputs.decodeInput(4, bs, 0.25);
      for (const t of [f.tokenIds, f.positions, f.slotMapping, f.logitsIndices, f.attention.seqLens])
        expect(t.shape).to.deep.equal([4]);
      expect(f.attention.queryStartLoc.shape).to.deep.equal([5]);
      expect(f.attention.blockTables.shape).to.deep.equal([4, width]);
      expect(f.attention.maxSeqLen, "captured for the block tables' capacity").to.equal(width * bs);
      expect(f.attention.maxQueryLen).to.equal(1);
      for (const t of [f.tokenIds, f.attention.blockTables]) expect(t.storage).to.equal(inputs.device.storage);
    } finally {
      inputs.dispose();
    }
  });

  it('an eager step packs prefill and decode into the same buffer; the next graph step restores its rows', () => {
    const inputs = new StepInputs({ maxNumBatchedTokens: M, maxNumSeqs: M, maxBlocksPerSeq: width }, 'cpu');
    try {
      // a prefill chunk of 3 tokens (positions 0-2 of a 5-token prompt, not sampled), and a decode at position 5
      const prompt = new Sequence('p', [20, 21, 22, 23, 24], params, 100);
      prompt.blockTable = [6, 2];
      const chunk: ScheduledSequence = { seq: prompt, start: 0, numTokens: 3, sample: false };
      const f = inputs.stageStep([chunk, decoding(6, [7, 3])], bs, 0.5);
      expect([...f.tokenIds.toArray()]).to.deep.equal([20, 21, 22, 15]);
      expect([...f.positions.toArray()]).to.deep.equal([0, 1, 2, 5]);
      expect([...f.slotMapping.toArray()]).to.deep.equal([6 * bs, 6 * bs + 1, 6 * bs + 2, 3 * bs + 1]);
      expect([...f.attention.queryStartLoc.toArray()]).to.deep.equal([0, 3, 4]);
      expect([...f.attention.seqLens.toArray()]).to.deep.equal([3, 6]);
      expect([...f.logitsIndices.toArray()], 'only the decode samples').to.deep.equal([3]);
      expect(f.attention.blockTables.shape, "the step's widest table").to.deep.equal([2, 2]);
      expect([...f.attention.blockTables.toArray()]).to.deep.equal([6, 2, 7, 3]);
      expect([f.attention.maxSeqLen, f.attention.maxQueryLen]).to.deep.equal([6, 3]);
      for (const t of [f.tokenIds, f.attention.blockTables]) expect(t.storage).to.equal(inputs.device.storage);
      // a step of prefill chunks only: one row of logits, dropped by the runner
      expect([...inputs.stageStep([chunk], bs, 0.5).logitsIndices.toArray()]).to.deep.equal([2]);

      // the graph's rows again: queryStartLoc and logitsIndices are one row per sequence
      inputs.upload(inputs.stageDecode([decoding(2, [5])], 2, bs));
      const g = inputs.decodeInput(2, bs, 0.5);
      expect([...g.attention.queryStartLoc.toArray()]).to.deep.equal([0, 1, 2]);
      expect([...g.logitsIndices.toArray()]).to.deep.equal([0, 1]);
      expect([...g.slotMapping.toArray()]).to.deep.equal([5 * bs + 1, -1]);
      expect(() => inputs.stageStep([chunk, chunk, chunk], bs, 1), 'nine tokens in a buffer of 8').to.throw(
        RangeError,
        /9 tokens, the buffer holds 8/,
      );
    } finally {
      inputs.dispose();
    }
  });

  it('refuses what a decode graph cannot run', () => {
    const inputs = new StepInputs({ maxNumBatchedTokens: M, maxNumSeqs: M, maxBlocksPerSeq: width }, 'cpu');
    try {
      expectThrow(
        () => inputs.stageDecode([decoding(3, [1]), decoding(3, [2])], 1, bs),
        RangeError,
        /2 sequences do not fit a graph of 1/,
      );
      expectThrow(() => inputs.stageDecode([decoding(3, [1])], 16, bs), RangeError, /graph of 16 \(largest 8\)/);
      expectThrow(
        () => inputs.stageDecode([{ ...decoding(3, [1]), numTokens: 2 }], 1, bs),
        RangeError,
        /runs 2 tokens; a decode graph runs one each/,
      );
      expectThrow(
        () => inputs.stageDecode([decoding(3, [1, 2, 3, 4, 5, 6])], 1, bs),
        RangeError,
        /has 6 blocks, the tables hold 5/,
      );
    } finally {
      inputs.dispose();
    }
  });
});

/** A stand-in for stream capture: the graph is the captured function, replayed with the arguments it was given. */
function recordingBackend(): GraphBackend & {
  captures: number[];
  replays: number;
  staleNext: boolean;
  failCapture: boolean;
} {
  const b = {
    captures: [] as number[],
    replays: 0,
    staleNext: false,
    failCapture: false,
    capture<T>(fn: () => T): { graph: CapturedGraph; result: T } {
      if (b.failCapture) throw new Error('capture failed on purpose');
      const result = fn();
      b.captures.push((result as Tensor).shape[0]!);
      const graph: CapturedGraph = {
        replay() {
          if (b.staleNext) {
            b.staleNext = false;
            return false;
          }
          ++b.replays;
          fn();
          return true;
        },
        dispose() {},
      };
      return { graph, result };
    },
  };
  return b;
}

interface Run {
  tokens: number[][];
  logprobs: number[][];
  steps: number;
}

/** Runs the requests to the end on `core`, one step at a time; `each` runs after every step. */
function runAll(core: EngineCore, prompts: number[][], params: SamplingParams[], each?: (step: number) => void): Run {
  const vocab = core.loaded.config.vocabSize;
  prompts.forEach((p, i) =>
    core.add({ requestId: String(i), promptTokenIds: p, params: resolveSamplingParams(params[i], vocab) }),
  );
  const tokens = prompts.map(() => [] as number[]),
    logprobs = prompts.map(() => [] as number[]);
  let steps = 0;
  while (core.hasUnfinished) {
    for (const o of core.step()) {
      tokens[Number(o.requestId)]!.push(o.token);
      logprobs[Number(o.requestId)]!.push(o.logprobs!.logprob);
    }
    ++steps;
    each?.(steps); // (not each?.(++steps): an absent callback would skip the increment)
  }
  return { tokens, logprobs, steps };
}

/** 11 prompts for 8 sequence slots: full batches of 8, then 7, 6, ... as they finish, so most graphs carry padding. */
function workload(vocab: number): { prompts: number[][]; params: SamplingParams[] } {
  const rand = prng(909);
  const prompts: number[][] = [],
    params: SamplingParams[] = [];
  for (let i = 0; i < 11; ++i) {
    prompts.push([
      1,
      ...Array.from({ length: 2 + Math.floor(rand() * 60) }, () => 3 + Math.floor(rand() * (Math.min(vocab, 500) - 3))),
    ]);
    params.push({ temperature: 0, maxTokens: 6 + Math.floor(rand() * 50), ignoreEos: true, logprobs: 0 });
  }
  return { prompts, params };
}

/** The pools start as uninitialised memory: zero them so two engines' caches can be compared bit for bit. */
const zeroKv = (core: EngineCore) => [...core.kv.key, ...core.kv.value].forEach((t) => t.fill(0));
const kvArrays = (core: EngineCore) => [...core.kv.key, ...core.kv.value].map((t) => t.toArray() as Float32Array);

describe(`decode graphs replay what eager execution computes (cpu, recording backend, ${modelName})`, function () {
  this.timeout(300_000);
  let m: LoadedModel;
  let opts: { maxNumSeqs: number; maxModelLen: number; kvCacheBytes: number };
  let eager: Run;
  let eagerKv: Float32Array[];
  const { prompts, params } = workload(512);
  before(async () => {
    m = await loadModel(MODEL, { device: 'cpu', dtype: 'float32' });
    // Contexts stay under 256 tokens, where the CPU attention does not split by batch size: bit-equal runs expected.
    opts = { maxNumSeqs: 8, maxModelLen: 128, kvCacheBytes: 128 * 16 * m.model.kvBytesPerSlot };
    const core = EngineCore.fromLoaded(m, { ...opts, enforceEager: true });
    try {
      expect(core.stats().cudaGraphs, 'enforceEager: no graphs').to.equal(null);
      zeroKv(core);
      eager = runAll(core, prompts, params);
      eagerKv = kvArrays(core);
    } finally {
      core.dispose();
    }
  });
  after(() => m?.model.dispose());

  it('the same tokens, the same logprobs, the same KV cache, with graphs replayed for the decode steps', () => {
    const backend = recordingBackend();
    const core = EngineCore.fromLoaded(m, opts, backend);
    try {
      expect(backend.captures, 'every size captured once, largest first').to.deep.equal([8, 4, 2, 1]);
      zeroKv(core);
      // buffers are reused: once the first steps ran, no step allocates a tensor
      let allocations = -1;
      const run = runAll(core, prompts, params, (step) => {
        const now = memoryStats().cpu.allocations;
        if (step === 2) allocations = now;
        else if (step > 2) expect(now, `live tensors after step ${step}`).to.equal(allocations);
      });
      expect(run.tokens).to.deep.equal(eager.tokens);
      expect(run.logprobs, 'logits bit-equal').to.deep.equal(eager.logprobs);
      // padding rows have slot -1, so nothing but the real tokens' K/V reached the cache
      const kv = kvArrays(core);
      kv.forEach((a, i) =>
        expect(Buffer.from(a.buffer).equals(Buffer.from(eagerKv[i]!.buffer)), `KV pool ${i}`).to.equal(true),
      );
      const g = core.stats().cudaGraphs!;
      expect(g.sizes).to.deep.equal([1, 2, 4, 8]);
      expect(g.replays).to.equal(backend.replays);
      expect(g.captures).to.equal(4);
      // every step after the prefills decodes; only steps that prefill run eagerly
      expect(g.replays).to.be.greaterThan(run.steps / 2);
      expect(g.replays).to.be.lessThan(run.steps);
    } finally {
      core.dispose();
    }
  });

  it('a stale graph (moved scratch, or a replaced workspace) is captured again, and the output is unchanged', () => {
    const backend = recordingBackend();
    const core = EngineCore.fromLoaded(m, opts, backend);
    try {
      const run = runAll(core, prompts, params, (step) => {
        if (step === 10) backend.staleNext = true;
        // a step larger than any reserved replaces the activation buffers, as an unplanned big prefill would
        if (step === 20) m.model.reserve(4096, 64);
      });
      expect(run.tokens).to.deep.equal(eager.tokens);
      expect(run.logprobs).to.deep.equal(eager.logprobs);
      expect(
        backend.captures.length,
        'recaptures: one for the stale replay, one per size used after the workspace moved',
      ).to.be.at.least(6);
      expect(core.stats().cudaGraphs!.captures).to.equal(backend.captures.length);
    } finally {
      core.dispose();
    }
  });

  it('explicit capture sizes: batches past the largest run eagerly', () => {
    const backend = recordingBackend();
    const core = EngineCore.fromLoaded(m, { ...opts, cudaGraphCaptureSizes: [2, 4] }, backend);
    try {
      expect(backend.captures).to.deep.equal([4, 2]);
      const run = runAll(core, prompts, params);
      expect(run.tokens).to.deep.equal(eager.tokens);
      expect(run.logprobs).to.deep.equal(eager.logprobs);
      expect(core.stats().cudaGraphs!.replays).to.be.greaterThan(0);
    } finally {
      core.dispose();
    }
  });

  it('profiled, a replayed decode step is one cudaGraphReplay op naming its graph and batch', () => {
    const backend = recordingBackend();
    const core = EngineCore.fromLoaded(m, opts, backend);
    let trace: Trace;
    core.startProfile(1000);
    try {
      runAll(core, prompts.slice(0, 3), params.slice(0, 3));
    } finally {
      trace = core.stopProfile();
      core.dispose();
    }
    const replays = trace.traceEvents.filter((e) => e.name === 'cudaGraphReplay');
    expect(replays).to.have.length(backend.replays);
    expect(replays[0]!.cat).to.equal('op');
    expect(replays[0]!.args, 'three sequences run the graph of 4').to.deep.equal({ batch: 4, numSeqs: 3 });
    expect(summarizeTrace(trace).ops.map((o) => o.name)).to.include('cudaGraphReplay');
  });

  it('enforceEager turns graphs off; a failed capture frees what the engine allocated', () => {
    const backend = recordingBackend();
    const core = EngineCore.fromLoaded(m, { ...opts, enforceEager: true }, backend);
    core.dispose();
    expect(backend.captures).to.deep.equal([]);
    m.model.reserve(2048, 8); // the engine's own reserve() then allocates nothing
    const before = memoryStats().cpu.allocations;
    backend.failCapture = true;
    expectThrow(() => EngineCore.fromLoaded(m, opts, backend), Error, /capture failed on purpose/);
    expect(memoryStats().cpu.allocations, 'KV cache, inputs and graph buffers freed').to.equal(before);
  });
});

// The emulated device runs the same claim on less work (2 short prompts and one context just past 512, 6 tokens each,
// one dtype): emulation takes a minute per long prefill.
describeCuda('decode graphs on CUDA', () => {
  for (const dtype of (emulated ? ['bfloat16'] : ['float32', 'bfloat16']) as FloatDType[]) {
    it(
      `an engine with graphs gives the eager engine's tokens and logprobs (dummy:stories42M, ${dtype}, contexts ` +
        `past 512${emulated ? '; emulated: a smaller workload' : ''})`,
      async function () {
        this.timeout(emulated ? 600_000 : 300_000);
        // maxModelLen 1024: the graphs' decode grid covers 8 splits of 128 keys, eager's only what the batch's longest
        // context needs; each sequence is cut by its own context either way, so the bits agree
        const m = await loadModel('dummy:stories42M', { device: 'cuda', dtype });
        try {
          const { prompts, params } = workload(m.config.vocabSize);
          if (emulated) {
            prompts.splice(2);
            params.splice(2);
            params.forEach((p) => (p.maxTokens = Math.min(p.maxTokens!, 6)));
          }
          const rand = prng(3);
          for (const len of emulated ? [516] : [560, 700]) {
            prompts.push([1, ...Array.from({ length: len }, () => 3 + Math.floor(rand() * 30000))]);
            params.push({ temperature: 0, maxTokens: emulated ? 6 : 40, ignoreEos: true, logprobs: 0 });
          }
          const opts = { maxNumSeqs: 8, maxModelLen: 1024, kvCacheBytes: 512 * 16 * m.model.kvBytesPerSlot };
          const eagerCore = EngineCore.fromLoaded(m, { ...opts, enforceEager: true });
          let want: Run;
          try {
            expect(eagerCore.stats().cudaGraphs).to.equal(null);
            want = runAll(eagerCore, prompts, params);
          } finally {
            eagerCore.dispose();
          }
          const core = EngineCore.fromLoaded(m, opts);
          try {
            const got = runAll(core, prompts, params);
            expect(got.tokens).to.deep.equal(want.tokens);
            expect(got.logprobs).to.deep.equal(want.logprobs);
            const g = core.stats().cudaGraphs!;
            expect(g.sizes).to.deep.equal([1, 2, 4, 8]);
            expect(g.replays).to.be.greaterThan(got.steps / 2);
          } finally {
            core.dispose();
          }
        } finally {
          m.model.dispose();
        }
      },
    );
  }
});
