// BlockManager and Scheduler alone (no model): unit cases, then a seeded random workload of arrivals, aborts and
// steps under a KV budget small enough to preempt, with the books checked after every operation and a shadow KV
// cache (the token id each slot holds) checked against every scheduled sequence's tokens.
import { expect } from 'chai';
import { BlockManager, hashBlock } from '../lib/engine/block-manager.js';
import { Scheduler, type SchedulerConfig, type SchedulerOutput } from '../lib/engine/scheduler.js';
import { Sequence } from '../lib/engine/sequence.js';
import { resolveSamplingParams, type SamplingParams } from '../lib/sampling/params.js';
import { prng } from './helpers.js';

const VOCAB = 1000;
const EOS = 2;
let nextId = 0;
const seqOf = (tokens: number[], params: SamplingParams = {}) =>
  new Sequence(`s${nextId++}`, tokens, resolveSamplingParams({ temperature: 0, ...params }, VOCAB), VOCAB);
const range = (n: number, from = 100) => Array.from({ length: n }, (_, i) => from + i);

/** Computes `n` more tokens of a sequence as a step would (what the scheduler's update does for them). */
function compute(bm: BlockManager, s: Sequence, n: number, cached: number[] = []): void {
  expect(bm.allocate(s, n, cached)).to.equal(true);
  s.numComputedTokens += n;
  bm.cacheFullBlocks(s);
}

describe('BlockManager', () => {
  it('hands out blocks, counts references, and takes them back', () => {
    const bm = new BlockManager(8, 4);
    const a = seqOf(range(9));
    compute(bm, a, 9);
    expect(a.blockTable).to.have.length(3);
    expect(bm.numUsedBlocks).to.equal(3);
    expect(bm.numFreeBlocks + bm.numUsedBlocks).to.equal(8);
    bm.checkInvariants([a]);
    // 9 tokens fill 2.25 blocks: 3 more tokens fit, the 4th needs a new block
    expect(bm.allocate(a, 3)).to.equal(true);
    expect(a.blockTable).to.have.length(3);
    expect(bm.allocate(a, 4)).to.equal(true);
    expect(a.blockTable).to.have.length(4);
    const b = seqOf(range(20, 500));
    expect(bm.allocate(b, 20)).to.equal(false); // 5 blocks, 4 free: refused, nothing taken
    expect(b.blockTable).to.deep.equal([]);
    expect(bm.numFreeBlocks).to.equal(4);
    bm.free(a);
    expect(bm.numFreeBlocks).to.equal(8);
    bm.checkInvariants([b]);
  });

  it('shares cached prefix blocks, checks their tokens, and always leaves a token to compute', () => {
    const bm = new BlockManager(16, 4);
    const a = seqOf(range(10));
    compute(bm, a, 10);
    expect(bm.numCachedBlocks).to.equal(2); // 2 full blocks; the third holds 2 tokens
    const b = seqOf([...range(8), 7, 7, 7]);
    const hit = bm.findCachedPrefix(b);
    expect(hit).to.deep.equal(a.blockTable.slice(0, 2));
    compute(bm, b, 3, hit);
    expect(b.numCachedTokens).to.equal(8);
    expect(bm.refCountOf(hit[0]!)).to.equal(2);
    bm.checkInvariants([a, b]);
    // A prompt that is exactly the cached blocks recomputes its last block (its last token's logits are needed).
    expect(bm.findCachedPrefix(seqOf(range(8)))).to.have.length(1);
    // A different first block: no hit even though the second block's tokens match.
    expect(bm.findCachedPrefix(seqOf([...range(4, 900), ...range(4, 104), 1]))).to.deep.equal([]);
    expect(bm.prefixCache).to.deep.equal({ queries: 21, hits: 8 });
  });

  it('keeps freed blocks cached until they are reused, then forgets them', () => {
    const bm = new BlockManager(4, 4);
    const a = seqOf(range(9));
    compute(bm, a, 9);
    bm.free(a);
    expect(bm.numFreeBlocks).to.equal(4);
    expect(bm.numCachedBlocks).to.equal(2);
    const again = seqOf(range(9));
    expect(bm.findCachedPrefix(again)).to.have.length(2); // still there after the free
    const big = seqOf(range(16, 300)); // needs all 4 blocks: the cached ones are reused
    compute(bm, big, 16);
    expect(bm.findCachedPrefix(again)).to.deep.equal(big.blockTable.length === 4 ? [] : ['unreachable']);
    bm.checkInvariants([big]);
  });

  it('with every hash colliding, hits only blocks whose tokens and parent match', () => {
    const bm = new BlockManager(32, 4, true, () => 7);
    const a = seqOf(range(12));
    compute(bm, a, 12);
    expect(bm.numCachedBlocks).to.equal(1); // one hash, one entry: the first block that claimed it
    expect(bm.findCachedPrefix(seqOf([...range(4), 1, 1, 1, 1, 5]))).to.deep.equal([a.blockTable[0]]);
    expect(bm.findCachedPrefix(seqOf([...range(4, 200), 5]))).to.deep.equal([]);
    bm.checkInvariants([a]);
  });

  it('hashes chain over the whole prefix', () => {
    const h1 = hashBlock(0, [1, 2, 3, 4]);
    expect(hashBlock(0, [1, 2, 3, 4])).to.equal(h1);
    expect(hashBlock(0, [1, 2, 3, 5])).not.to.equal(h1);
    expect(hashBlock(h1, [5, 6, 7, 8])).not.to.equal(hashBlock(hashBlock(0, [1, 2, 3, 5]), [5, 6, 7, 8]));
    expect(Number.isSafeInteger(h1)).to.equal(true);
  });
});

/** A fake step: the shadow cache records which token each slot holds; sampled tokens come from the seeded stream. */
class World {
  readonly scheduler: Scheduler;
  readonly shadow: Int32Array;
  steps = 0;
  chunked = 0;

  constructor(
    readonly config: SchedulerConfig,
    readonly bm: BlockManager,
    private readonly rand: () => number,
  ) {
    this.scheduler = new Scheduler(config, bm, [EOS]);
    this.shadow = new Int32Array(bm.numBlocks * bm.blockSize).fill(-1);
  }

  step(): SchedulerOutput {
    const s = this.scheduler;
    const out = s.schedule();
    const bs = this.bm.blockSize;
    let total = 0;
    const seen = new Set<Sequence>();
    for (const { seq, start, numTokens, sample } of out.scheduled) {
      if (seen.has(seq)) throw new Error(`${seq.requestId} scheduled twice in one step`);
      seen.add(seq);
      expect(seq.status).to.equal('running');
      expect(start).to.equal(seq.numComputedTokens);
      expect(numTokens).to.be.at.least(1);
      expect(sample).to.equal(start + numTokens === seq.numTokens);
      if (!sample) ++this.chunked;
      total += numTokens;
      // The step writes this step's tokens, then reads every earlier one: the cache must hold the sequence's prefix.
      for (let p = start; p < start + numTokens; ++p)
        this.shadow[seq.blockTable[Math.floor(p / bs)]! * bs + (p % bs)] = seq.tokenAt(p);
    }
    for (const { seq, start, numTokens } of out.scheduled)
      for (let p = 0; p < start + numTokens; ++p) {
        const slot = seq.blockTable[Math.floor(p / bs)]! * bs + (p % bs);
        if (this.shadow[slot] !== seq.tokenAt(p))
          throw new Error(
            `${seq.requestId}: slot of position ${p} holds ${this.shadow[slot]}, expected ${seq.tokenAt(p)}`,
          );
      }
    expect(total).to.equal(out.numBatchedTokens);
    expect(total).to.be.at.most(this.config.maxNumBatchedTokens);
    expect(s.running.length).to.be.at.most(this.config.maxNumSeqs);
    const tokens = out.scheduled
      .filter((x) => x.sample)
      .map(() => (this.rand() < 0.03 ? EOS : 3 + Math.floor(this.rand() * 50)));
    s.update(out, tokens);
    ++this.steps;
    return out;
  }

  check(): void {
    const s = this.scheduler;
    const live = [...s.sequences()];
    this.bm.checkInvariants(live);
    expect(s.running.length + s.waiting.length).to.equal(live.length);
    for (const q of s.running)
      if (q.status !== 'running') throw new Error(`${q.requestId} is in the running queue as ${q.status}`);
    for (const q of s.waiting)
      if (q.status !== 'waiting' || q.blockTable.length > 0 || q.numComputedTokens > 0)
        throw new Error(
          `${q.requestId} waits as ${q.status} holding ${q.blockTable.length} blocks and ${q.numComputedTokens} ` +
            `computed tokens`,
        );
    expect(this.bm.numUsedBlocks + this.bm.numFreeBlocks).to.equal(this.bm.numBlocks);
  }
}

describe('Scheduler', () => {
  const config = (o: Partial<SchedulerConfig> = {}): SchedulerConfig => ({
    maxNumSeqs: 8,
    maxNumBatchedTokens: 64,
    maxModelLen: 128,
    enableChunkedPrefill: true,
    ...o,
  });

  it('runs decodes and a new prefill in one step, chunking a prompt longer than the budget', () => {
    const bm = new BlockManager(64, 4);
    const w = new World(config({ maxNumBatchedTokens: 16 }), bm, prng(1));
    const a = seqOf(range(5), { maxTokens: 50, ignoreEos: true });
    w.scheduler.add(a);
    expect(w.step().scheduled.map((x) => x.numTokens)).to.deep.equal([5]);
    const b = seqOf(range(40, 300), { maxTokens: 50, ignoreEos: true });
    w.scheduler.add(b);
    const out = w.step();
    expect(out.scheduled.map((x) => [x.seq.requestId, x.numTokens, x.sample])).to.deep.equal([
      [a.requestId, 1, true],
      [b.requestId, 15, false],
    ]);
    expect(w.step().scheduled.map((x) => x.numTokens)).to.deep.equal([1, 15]);
    expect(w.step().scheduled.map((x) => [x.numTokens, x.sample])).to.deep.equal([
      [1, true],
      [10, true],
    ]);
    w.check();
  });

  it('without chunked prefill, a prompt waits for a step with room for all of it (FCFS: nothing overtakes it)', () => {
    const bm = new BlockManager(64, 4);
    const w = new World(config({ maxNumBatchedTokens: 40, enableChunkedPrefill: false }), bm, prng(2));
    const a = seqOf(range(30), { maxTokens: 5, ignoreEos: true });
    const b = seqOf(range(30, 400), { maxTokens: 5, ignoreEos: true });
    const c = seqOf(range(3, 700), { maxTokens: 5, ignoreEos: true });
    [a, b, c].forEach((s) => w.scheduler.add(s));
    // b (30) does not fit beside a (30) in 40 tokens; c (3) would, but does not overtake b
    expect(w.step().scheduled.map((x) => x.seq)).to.deep.equal([a]);
    expect(w.step().scheduled.map((x) => [x.seq, x.numTokens])).to.deep.equal([
      [a, 1],
      [b, 30],
      [c, 3],
    ]);
    w.check();
  });

  it('preempts the newest running sequence when blocks run out, and resumes it by recompute', () => {
    const bm = new BlockManager(6, 4); // 24 slots
    const w = new World(config(), bm, prng(3));
    const a = seqOf(range(7), { maxTokens: 12, ignoreEos: true });
    const b = seqOf(range(7, 300), { maxTokens: 12, ignoreEos: true });
    w.scheduler.add(a);
    w.scheduler.add(b);
    let sawPreempt: SchedulerOutput | null = null;
    while (w.scheduler.hasUnfinished) {
      const out = w.step();
      w.check();
      if (out.preempted.length > 0 && !sawPreempt) sawPreempt = out;
    }
    expect(sawPreempt, 'a preemption').not.to.equal(null);
    expect(sawPreempt!.preempted).to.deep.equal([b]); // the newer one gives way
    expect(b.numPreemptions).to.be.at.least(1);
    expect(a.numPreemptions).to.equal(0);
    expect(a.outputTokenIds).to.have.length(12);
    expect(b.outputTokenIds).to.have.length(12);
    expect(bm.numFreeBlocks).to.equal(6);
  });

  it('aborting frees the blocks at once, from either queue', () => {
    const bm = new BlockManager(16, 4);
    const w = new World(config({ maxNumSeqs: 1 }), bm, prng(4));
    const a = seqOf(range(9), { maxTokens: 50 });
    const b = seqOf(range(9, 300), { maxTokens: 50 });
    w.scheduler.add(a);
    w.scheduler.add(b);
    w.step();
    expect(bm.numUsedBlocks).to.equal(3);
    expect(w.scheduler.abort(b.requestId)).to.equal(b); // waiting
    expect(w.scheduler.abort(a.requestId)).to.equal(a); // running
    expect(a.finishReason).to.equal('abort');
    expect(bm.numUsedBlocks).to.equal(0);
    expect(w.scheduler.abort(a.requestId)).to.equal(undefined);
    w.check();
  });

  it('ends sequences at an end token, a stop id, maxTokens and maxModelLen', () => {
    const bm = new BlockManager(64, 4);
    const s = new Scheduler(config({ maxModelLen: 12 }), bm, [EOS]);
    const run = (seq: Sequence, tokens: number[]) => {
      s.add(seq);
      for (const t of tokens) {
        const out = s.schedule();
        s.update(
          out,
          out.scheduled.filter((x) => x.sample).map(() => t),
        );
        if (seq.isFinished) break;
      }
      return [seq.finishReason, seq.stopReason, seq.outputTokenIds.length];
    };
    expect(run(seqOf(range(3), { maxTokens: 9 }), [5, EOS, 5])).to.deep.equal(['stop', null, 2]);
    expect(run(seqOf(range(3), { maxTokens: 9, ignoreEos: true }), [EOS, EOS, 5])).to.deep.equal([null, null, 3]);
    expect(run(seqOf(range(3), { maxTokens: 9, stopTokenIds: [9] }), [5, 9])).to.deep.equal(['stop', 9, 2]);
    expect(run(seqOf(range(3), { maxTokens: 2 }), [5, 5, 5])).to.deep.equal(['length', null, 2]);
    expect(run(seqOf(range(8), { maxTokens: 99 }), [5, 5, 5, 5, 5, 5])).to.deep.equal(['length', null, 4]);
    expect(() => s.add(seqOf(range(12)))).to.throw(RangeError, /12 tokens; maxModelLen is 12/);
  });

  for (const caching of [true, false]) {
    const prefixCaching = caching ? 'on' : 'off';
    it(`keeps its books over 12,000 random arrivals, aborts, steps (prefix caching ${prefixCaching})`, function () {
      this.timeout(120_000);
      const rand = prng(caching ? 2026 : 2027);
      const bm = new BlockManager(40, 4, caching); // 160 slots against maxModelLen 96: preemption is routine
      const w = new World(config({ maxNumSeqs: 12, maxNumBatchedTokens: 48, maxModelLen: 96 }), bm, rand);
      // Prompts share prefixes drawn from a few stems (system prompts), so prefix hits happen.
      const stems = Array.from({ length: 4 }, (_, i) =>
        Array.from({ length: 4 + Math.floor(rand() * 24) }, (_, j) => 3 + ((i * 31 + j * 7) % 90)),
      );
      const all: Sequence[] = [];
      let ops = 0,
        arrivals = 0,
        aborts = 0;
      const OPS = 12_000;
      for (; ops < OPS; ++ops) {
        const r = rand();
        const live = [...w.scheduler.sequences()];
        // Arrivals keep a queue of up to 30 sequences (about twice what fits), so the cache stays under pressure.
        if ((r < 0.25 && live.length < 30) || live.length === 0) {
          const stem = rand() < 0.7 ? stems[Math.floor(rand() * stems.length)]! : [];
          const tail = Array.from({ length: 1 + Math.floor(rand() * 40) }, () => 3 + Math.floor(rand() * 90));
          const seq = seqOf([...stem, ...tail].slice(0, 90), { maxTokens: 1 + Math.floor(rand() * 40) });
          w.scheduler.add(seq);
          all.push(seq);
          ++arrivals;
        } else if (r < 0.3) {
          w.scheduler.abort(live[Math.floor(rand() * live.length)]!.requestId);
          ++aborts;
        } else {
          w.step();
        }
        w.check();
      }
      let drain = 0;
      while (w.scheduler.hasUnfinished) {
        w.step();
        w.check();
        if (++drain > 10_000) throw new Error('the scheduler did not drain: a livelock');
      }
      expect(bm.numFreeBlocks).to.equal(bm.numBlocks);
      for (const s of all) {
        expect(s.isFinished).to.equal(true);
        expect(s.blockTable).to.deep.equal([]);
        if (s.finishReason === 'length')
          expect(s.outputTokenIds.length === s.params.maxTokens || s.numTokens === 96).to.equal(true);
      }
      // The workload did exercise what it claims to.
      expect(arrivals).to.be.greaterThan(2000);
      expect(aborts).to.be.greaterThan(500);
      expect(w.scheduler.numPreemptions).to.be.greaterThan(500);
      expect(w.chunked).to.be.greaterThan(500);
      if (caching) expect(bm.prefixCache.hits).to.be.greaterThan(10_000);
      else expect(bm.prefixCache).to.deep.equal({ queries: 0, hits: 0 });
    });
  }
});
