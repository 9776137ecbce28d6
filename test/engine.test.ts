// The engine end to end on stories260K: greedy outputs byte-identical whether requests run alone, in a batch of 32,
// under forced preemption, with chunked prefill, and with prefix-cache hits; then InferenceEngine (the worker
// thread): streaming, aborts, stats that add up, errors, and a clean shutdown.
import { join } from 'node:path';
import { expect } from 'chai';
import { EngineCore, type GenerationResult, generate, InferenceEngine, type StreamDelta } from '../lib/engine/index.js';
import type { Device } from '../lib/index.js';
import { ModelFormatError } from '../lib/errors.js';
import { type LoadedModel, loadModel } from '../lib/model/index.js';
import { memoryStats } from '../lib/runtime.js';
import type { SamplingParams } from '../lib/sampling/params.js';
import { describeDevices, expectReject, onEmulator, prng, sharedModels, skipBecause } from './helpers.js';

const models = sharedModels();
const stories = models ? join(models, 'stories260K', 'stories260K.bin') : null;
const skipWhy = 'skipped: ../shared/models/stories260K is absent';

const SYSTEM =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One ' +
  'day,';

/**
 * 32 prompts of mixed lengths (text, and seeded token ids up to 150 long) and mixed output budgets; the first `n` of
 * them, with outputs of at most `maxTokens`, where a device is too slow for all (the emulated one).
 */
function workload(n = 32, maxTokens = Infinity): { prompts: (string | number[])[]; params: SamplingParams[] } {
  const rand = prng(505);
  const texts = [
    'Once upon a time',
    'Lily and Ben',
    'The cat',
    'One day, a little boy named Tim went to the park.',
    'Sue had a red ball',
    'The sun',
  ];
  const prompts: (string | number[])[] = [];
  const params: SamplingParams[] = [];
  for (let i = 0; i < 32; ++i) {
    if (i % 3 === 0) prompts.push(texts[i % texts.length]!);
    else prompts.push([1, ...Array.from({ length: Math.floor(rand() * 150) }, () => 3 + Math.floor(rand() * 500))]);
    params.push({
      temperature: 0,
      maxTokens: Math.min(maxTokens, 5 + Math.floor(rand() * 120)),
      ignoreEos: i % 2 === 0,
    });
  }
  return { prompts: prompts.slice(0, n), params: params.slice(0, n) };
}

function expectSame(got: GenerationResult[], want: GenerationResult[], what: string): void {
  expect(got).to.have.length(want.length);
  got.forEach((r, i) => {
    expect(r.tokenIds, `${what}: prompt ${i} token ids`).to.deep.equal(want[i]!.tokenIds);
    expect(r.text, `${what}: prompt ${i} text`).to.equal(want[i]!.text);
    expect(r.finishReason, `${what}: prompt ${i} finish`).to.equal(want[i]!.finishReason);
  });
}

describeDevices(
  'greedy outputs do not depend on batching, preemption, chunking or the prefix cache',
  (device: Device) => {
    let m: LoadedModel;
    let alone: GenerationResult[];
    let roomy: { kvCacheBytes: number };
    // the emulated device: 10 of the prompts, 16 tokens each at most (two of them still past 100 prompt tokens)
    const small = onEmulator(device);
    const { prompts, params } = small ? workload(10, 16) : workload();
    const note = small ? ' (emulated: 10 prompts, at most 16 tokens each)' : '';
    before(async function () {
      if (!stories) skipBecause(this, '../shared/models/stories260K is absent');
      this.timeout(600_000);
      // float32 on both devices: the claim is about scheduling, not about rounding.
      m = await loadModel(stories, { device, dtype: 'float32' });
      // An explicit budget (2048 blocks) on both devices: no profiling run, no 90% of a GPU per call.
      roomy = { kvCacheBytes: 2048 * 16 * m.model.kvBytesPerSlot };
      alone = [];
      for (let i = 0; i < prompts.length; ++i) alone.push(...(await generate(m, prompts[i]!, params[i], roomy)));
    });
    after(() => m?.model.dispose());

    it(`a batch of ${prompts.length} with mixed lengths${note}`, async () => {
      let maxRunning = 0;
      const r = await generate(m, prompts, params, {
        ...roomy,
        onStep: (c) => {
          maxRunning = Math.max(maxRunning, c.scheduler.running.length);
        },
      });
      expect(maxRunning).to.equal(prompts.length);
      expectSame(r, alone, 'batch');
    });

    it(`forced preemption: a KV cache of 36 blocks for ${prompts.length} sequences${note}`, async () => {
      let core: EngineCore | null = null;
      const kvCacheBytes = 36 * 16 * m.model.kvBytesPerSlot;
      const r = await generate(m, prompts, params, {
        kvCacheBytes,
        onStep: (c) => {
          core = c;
        },
      });
      const stats = core!.stats();
      expect(stats.memory.numBlocks).to.equal(36);
      expect(stats.scheduler.preempted).to.be.greaterThan(small ? 0 : 10);
      expectSame(r, alone, 'preemption');
    });

    it(`chunked prefill: 16 tokens a step${note}`, async () => {
      expect(Math.max(...alone.map((a) => a.promptTokenIds.length))).to.be.greaterThan(100);
      const r = await generate(m, prompts, params, { ...roomy, maxNumBatchedTokens: 16 });
      expectSame(r, alone, 'chunked');
    });

    it(`prefix-cache hits on a shared system prompt, with and without preemption${note}`, async () => {
      const shared = prompts.map((p) =>
        typeof p === 'string'
          ? `${SYSTEM} ${p}`
          : [
              1,
              403,
              407,
              261,
              378,
              436,
              2,
              1,
              403,
              407,
              261,
              378,
              436,
              ...Array.from({ length: 24 }, (_, j) => 3 + ((j * 37) % 500)),
              ...p.slice(1),
            ],
      );
      const one: GenerationResult[] = [];
      for (let i = 0; i < shared.length; ++i)
        one.push(...(await generate(m, shared[i]!, params[i], { ...roomy, enablePrefixCaching: false })));
      // A step budget of 64 admits the prompts over several steps, so later ones find the earlier ones' blocks.
      for (const kvCacheBytes of [undefined, 40 * 16 * m.model.kvBytesPerSlot]) {
        let core: EngineCore | null = null;
        const r = await generate(m, shared, params, {
          maxNumBatchedTokens: 64,
          kvCacheBytes: kvCacheBytes ?? roomy.kvCacheBytes,
          onStep: (c) => {
            core = c;
          },
        });
        const hits = r.filter((x) => x.numCachedTokens > 0).length;
        expect(hits, 'requests with prefix hits').to.be.greaterThan(small ? 5 : 20);
        expect(core!.stats().prefixCache.hits).to.be.greaterThan(0);
        if (kvCacheBytes) expect(core!.stats().scheduler.preempted).to.be.greaterThan(0);
        expectSame(r, one, kvCacheBytes ? 'prefix hits + preemption' : 'prefix hits');
      }
    });
  },
);

const MODEL = stories ?? 'dummy:stories15M';

const engineModel = stories ? 'stories260K' : `dummy:stories15M (${skipWhy})`;
describe(`InferenceEngine (worker thread) on ${engineModel}`, function () {
  this.timeout(120_000);
  let engine: InferenceEngine;
  before(async () => {
    engine = await InferenceEngine.create({ model: MODEL, device: 'cpu', maxModelLen: 256, maxNumSeqs: 16, seed: 7 });
  });
  after(async () => engine?.stop());

  it('gives what the in-process engine gives, for one prompt and for several', async () => {
    // the worker's seed: the same weights where the model is a dummy one
    const m = await loadModel(MODEL, { device: 'cpu', seed: 7 });
    try {
      const p: SamplingParams = { temperature: 0, maxTokens: 40, ignoreEos: true };
      const prompts = ['Once upon a time', 'The cat', [1, 403, 407]];
      const want = await generate(m, prompts, p, { maxModelLen: 256 });
      const steps = (await engine.getStats()).throughput.steps;
      expectSame(await engine.generate(prompts, p), want, 'worker batch');
      // the prompts of one call reach the core together: one step prefills all three, 39 more decode them
      expect((await engine.getStats()).throughput.steps - steps).to.equal(40);
      const one = await engine.generate('The cat', p);
      expectSame([one], [want[1]!], 'worker single');
      expect(one.requestId).to.be.a('string');
      expect(one.timings.tokens).to.have.length(40);
      expect(one.timings.firstToken).to.be.at.least(one.timings.arrival);
      expect(one.timings.finish).to.be.at.least(one.timings.tokens.at(-1)!);
    } finally {
      m.model.dispose();
    }
  });

  it('streams deltas that concatenate to the final text, the last one with the finish reason', async () => {
    const s = engine.stream('Once upon a time', { temperature: 0, maxTokens: 50, ignoreEos: true });
    const deltas: StreamDelta[] = [];
    for await (const d of s) deltas.push(d);
    const r = await s.result;
    expect(deltas.map((d) => d.text).join('')).to.equal(r.text);
    expect(deltas.flatMap((d) => d.tokenIds)).to.deep.equal(r.tokenIds);
    expect(deltas.at(-1)!.finishReason).to.equal('length');
    expect(deltas.slice(0, -1).every((d) => d.finishReason === null)).to.equal(true);
    expect(deltas.length).to.be.greaterThan(10); // one per token, not one at the end
  });

  it('cuts at a stop string, holding back what might become one', async () => {
    const free = await engine.generate('Once upon a time', { temperature: 0, maxTokens: 60, ignoreEos: true });
    const stop = free.text.slice(15, 19);
    const s = engine.stream('Once upon a time', { temperature: 0, maxTokens: 60, ignoreEos: true, stop: [stop] });
    let streamed = '';
    for await (const d of s) streamed += d.text;
    const r = await s.result;
    expect(r.text).to.equal(free.text.slice(0, free.text.indexOf(stop)));
    expect(streamed).to.equal(r.text);
    expect([r.finishReason, r.stopReason]).to.deep.equal(['stop', stop]);
    expect((await engine.getStats()).scheduler.running).to.equal(0); // the core was told to drop it
  });

  it('abort mid-stream ends the stream and frees the blocks at once; breaking out of the loop aborts too', async () => {
    const s = engine.stream([1, 403], { temperature: 0, maxTokens: 200, ignoreEos: true }, { requestId: 'to-abort' });
    const deltas: StreamDelta[] = [];
    for await (const d of s) {
      deltas.push(d);
      if (deltas.length === 3) expect(await engine.abort('to-abort')).to.equal(true);
    }
    const r = await s.result;
    expect(r.finishReason).to.equal('abort');
    expect(r.tokenIds.length).to.be.lessThan(200);
    expect(deltas.at(-1)!.finishReason).to.equal('abort');
    expect(deltas.map((d) => d.text).join('')).to.equal(r.text);
    let stats = await engine.getStats();
    expect(stats.memory.usedBlocks).to.equal(0);
    expect(stats.scheduler.running + stats.scheduler.waiting).to.equal(0);
    expect(await engine.abort('to-abort')).to.equal(false);

    const s2 = engine.stream([1, 403], { temperature: 0, maxTokens: 200, ignoreEos: true });
    for await (const d of s2) if (d.tokenIds.length > 0) break;
    expect((await s2.result).finishReason).to.equal('abort');
    stats = await engine.getStats();
    expect(stats.memory.usedBlocks).to.equal(0);
  });

  it('an AbortSignal aborts a request, before or after it starts', async () => {
    const ac = new AbortController();
    const s = engine.stream([1, 403], { temperature: 0, maxTokens: 200, ignoreEos: true }, { signal: ac.signal });
    for await (const d of s) if (d.tokenIds.length > 0) ac.abort();
    const r = await s.result;
    expect(r.finishReason).to.equal('abort');
    expect(r.tokenIds.length).to.be.lessThan(200);
    const early = await engine.generate('The cat', { maxTokens: 50, ignoreEos: true }, { signal: AbortSignal.abort() });
    expect(early.finishReason).to.equal('abort');
    // the core heard of the request before its abort, so nothing of it is left running
    const stats = await engine.getStats();
    expect([stats.memory.usedBlocks, stats.scheduler.running, stats.scheduler.waiting]).to.deep.equal([0, 0, 0]);
  });

  it('getStats adds up: blocks, bytes, prefix hits, throughput', async () => {
    const p: SamplingParams = { temperature: 0, maxTokens: 8 };
    await engine.generate(`${SYSTEM} Lily`, p);
    const before = await engine.getStats();
    const running = engine.generate([`${SYSTEM} Ben`, `${SYSTEM} Sue`], p);
    const during = await engine.getStats();
    const rs = await running;
    const after = await engine.getStats();
    for (const s of [before, during, after]) {
      const mem = s.memory;
      expect(mem.usedBlocks + mem.freeBlocks).to.equal(mem.numBlocks);
      expect(mem.cachedBlocks).to.be.at.most(mem.numBlocks);
      expect(mem.kvCacheBytes).to.equal(
        mem.numBlocks *
          mem.blockSize *
          engine.config.numLayers *
          2 *
          engine.config.numKvHeads *
          engine.config.headDim *
          4,
      );
      expect(mem.peakBytes).to.be.at.least(mem.weightsBytes + mem.kvCacheBytes);
      expect(s.prefixCache.hits).to.be.at.most(s.prefixCache.queries);
    }
    expect(after.memory.usedBlocks).to.equal(0);
    expect(after.memory.cachedBlocks).to.be.greaterThan(0);
    expect(rs.every((r) => r.numCachedTokens >= 16)).to.equal(true);
    expect(after.prefixCache.hits - before.prefixCache.hits).to.equal(rs.reduce((s, r) => s + r.numCachedTokens, 0));
    expect(after.throughput.generationTokens - before.throughput.generationTokens).to.equal(16);
    expect(after.throughput.promptTokens - before.throughput.promptTokens).to.equal(
      rs.reduce((s, r) => s + r.promptTokenIds.length - r.numCachedTokens, 0),
    );
  });

  it('rejects bad requests with clear errors and goes on serving', async () => {
    const V = engine.config.vocabSize;
    await expectReject(
      engine.generate([1, V]),
      RangeError,
      new RegExp(`prompt must be a string or a non-empty array of token ids in \\[0, ${V}\\)`),
    );
    await expectReject(
      engine.generate(Array.from({ length: 256 }, () => 5)),
      RangeError,
      /prompt: this model's maximum context length is 256 tokens\. However, you requested 257 tokens \(256 in the/,
    );
    await expectReject(engine.generate('a', { topP: 2 }), RangeError, /topP must be in \(0, 1\]/);
    await expectReject(engine.generate(['a', 'b'], [{}]), RangeError, /params has 1 entries for 2 prompts/);
    // one bad prompt of several: nothing is sent
    const steps = (await engine.getStats()).throughput.steps;
    await expectReject(
      engine.generate(['fine', [1, V]], { maxTokens: 50 }),
      RangeError,
      /prompts\[1\] must be a string/,
    );
    const after = await engine.getStats();
    expect([after.scheduler.running, after.scheduler.waiting, after.throughput.steps]).to.deep.equal([0, 0, steps]);
    await expectReject(engine.generate([], {}), TypeError, /prompts must be/);
    await expectReject(
      engine.generate('a', {}, { signal: 'stop' as never }),
      TypeError,
      /signal must be an AbortSignal/,
    );
    const first = engine.generate('a', { maxTokens: 30, ignoreEos: true }, { requestId: 'dup' });
    await expectReject(
      engine.generate('b', {}, { requestId: 'dup' }),
      RangeError,
      /request id "dup" is already in flight/,
    );
    expect((await first).tokenIds).to.have.length(30);
  });
});

describe('InferenceEngine options, failures and shutdown', function () {
  this.timeout(120_000);

  it('rejects bad options naming them, before starting anything', async () => {
    await expectReject(
      InferenceEngine.create({ maxNumSeqs: 0 }),
      RangeError,
      /maxNumSeqs must be an integer in \[1, 65536\], got 0/,
    );
    await expectReject(InferenceEngine.create({ blockSize: '16' as never }), TypeError, /blockSize must be a number/);
    await expectReject(
      InferenceEngine.create({ gpuMemoryUtilization: 1.5 }),
      RangeError,
      /gpuMemoryUtilization must be in \(0, 1\]/,
    );
    await expectReject(InferenceEngine.create({ bogus: 1 } as never), TypeError, /unknown option "bogus"/);
    await expectReject(
      InferenceEngine.create({ model: 'dummy:stories15M', maxModelLen: 100_000 }),
      RangeError,
      /maxModelLen 100000 is longer than the model's context \(256\)/,
    );
    await expectReject(
      InferenceEngine.create({ model: 'dummy:stories15M', enableChunkedPrefill: false, maxNumBatchedTokens: 64 }),
      RangeError,
      /without chunked prefill maxNumBatchedTokens \(64\) must be at least maxModelLen \(256\)/,
    );
  });

  it('a model the worker cannot load, or a KV budget too small, rejects with the error from the worker', async () => {
    await expectReject(
      InferenceEngine.create({ model: '/no/such/model.bin' }),
      ModelFormatError,
      /no such file or directory/,
    );
    await expectReject(
      InferenceEngine.create({ model: 'dummy:stories15M', device: 'cpu', kvCacheBytes: 1000 }),
      RangeError,
      /the KV cache holds 0 blocks of 16 tokens .* needs 16\. Lower maxModelLen or raise the budget/,
    );
  });

  it("the caller's event loop is free while a step computes", async () => {
    // The request's first step (a 1000-token prefill of a 42M model, 10^11 FLOP) runs on the worker: a callback queued
    // on this thread as the request goes in runs before its result is handled here. Had the step run on this thread,
    // the result would settle first (a microtask) and the callback would come after it: an order, not a timer.
    const engine = await InferenceEngine.create({ model: 'dummy:stories42M', device: 'cpu', maxNumSeqs: 1 });
    try {
      let callbackFirst: boolean | null = null;
      const pending = engine
        .generate(
          Array.from({ length: 1000 }, (_, i) => 3 + i),
          { maxTokens: 1 },
        )
        .finally(() => (callbackFirst ??= false));
      setImmediate(() => (callbackFirst ??= true));
      await pending;
      expect(callbackFirst, 'a callback of this thread ran while the step computed').to.equal(true);
    } finally {
      await engine.stop();
    }
  });

  it('a worker that dies fails what is in flight with the reason; start() brings it back', async () => {
    const engine = await InferenceEngine.create({ model: 'dummy:stories15M', device: 'cpu', maxNumSeqs: 2 });
    try {
      const s = engine.stream('hello', { maxTokens: 200, ignoreEos: true });
      const first = await s.next();
      expect(first.done).to.equal(false);
      await engine.killCore(0);
      await expectReject(s.result, Error, /the engine worker exited \(code 1\)/);
      await expectReject(engine.getStats(), Error, /the engine worker exited/);
      await expectReject(engine.generate('hello'), Error, /the engine worker exited/);
      await engine.start();
      expect((await engine.generate('hello', { maxTokens: 3 })).tokenIds).to.have.length(3);
      // Terminated at any point of a step (mid-op too), the worker must not take the process down with it.
      const rand = prng(9);
      for (let i = 0; i < 12; ++i) {
        const t = engine.stream('hello', { maxTokens: 200, ignoreEos: true });
        await t.next();
        await new Promise((r) => setTimeout(r, rand() * 5));
        await engine.killCore(0);
        await expectReject(t.result, Error, /the engine worker exited/);
        await engine.start();
      }
    } finally {
      await engine.stop();
    }
  });

  it('stop() frees every byte the engine held; start() brings it back', async () => {
    const gc = async () => {
      for (let i = 0; i < 3; ++i) {
        globalThis.gc?.();
        await new Promise((r) => setImmediate(r));
      }
    };
    await gc();
    const base = memoryStats().cpu.bytes;
    const engine = await InferenceEngine.create({ model: 'dummy:stories15M', device: 'cpu', maxNumSeqs: 4 });
    expect(memoryStats().cpu.bytes).to.be.greaterThan(base);
    await engine.generate('hello', { maxTokens: 4 });
    const inflight = engine.generate('hello', { maxTokens: 200, ignoreEos: true });
    await engine.stop();
    expect((await inflight).finishReason).to.equal('abort');
    await gc();
    expect(memoryStats().cpu.bytes).to.equal(base);
    await expectReject(engine.getStats(), Error, /stopped/);
    await engine.start();
    expect((await engine.generate('hello', { maxTokens: 4 })).tokenIds).to.have.length(4);
    await engine.stop();
  });
});
