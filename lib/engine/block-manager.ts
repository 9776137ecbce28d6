// The KV-cache block manager: which cache blocks each sequence owns, reference counts, and prefix caching. Pure
// TypeScript; the device only ever sees the block tables it produces.
//
// Prefix caching: a full block is known by a hash chained over every token before it (its parent's hash and its own
// tokens). A hit is checked token by token and against the parent block it was computed after, so a hash collision
// costs a miss, never wrong K/V. A block whose last owner is done goes to the back of the free queue with its
// contents intact; it is reused (and forgotten) only when it reaches the front, so recently used prefixes survive.
import type { Sequence } from './sequence.js';

const NONE = -1;

/** 53-bit hash of a block: its parent's hash and its tokens, two 32-bit lanes. */
export function hashBlock(parentHash: number, tokens: ArrayLike<number>): number {
  let a = 0x9e3779b9 ^ (parentHash % 0x100000000),
    b = 0x85ebca6b ^ Math.floor(parentHash / 0x100000000);
  for (let i = 0; i < tokens.length; ++i) {
    const t = tokens[i]!;
    a = Math.imul(a ^ t, 0xcc9e2d51);
    a = Math.imul((a << 15) | (a >>> 17), 0x1b873593);
    b = Math.imul(b ^ t ^ (a >>> 16), 0x27d4eb2f);
    b = (b << 13) | (b >>> 19);
  }
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b) ^ tokens.length;
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  return (a >>> 0) * 0x200000 + ((b >>> 0) >>> 11);
}

export interface PrefixCacheStats {
  /** Prompt tokens looked up in the prefix cache (once per admission of a sequence). */
  queries: number;
  /** Of those, tokens found cached. */
  hits: number;
}

export class BlockManager {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly enablePrefixCaching: boolean;
  readonly prefixCache: PrefixCacheStats = { queries: 0, hits: 0 };

  private readonly refCount: Int32Array;
  // The free queue: a doubly linked list over block ids, front = next to reuse. Blocks with refCount 0 only.
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private head = NONE;
  private tail = NONE;
  private numFree: number;
  // Prefix cache: hash -> block, and per block what the hash stands for.
  private readonly cached = new Map<number, number>();
  private readonly blockHash: Float64Array; // NaN = not cached
  private readonly blockTokens: (Int32Array | null)[];
  private readonly parentBlock: Int32Array; // block it was computed after (NONE for a first block)
  private readonly parentEpoch: Uint32Array; // that block's epoch then
  private readonly epoch: Uint32Array; // bumped each time a block is handed out afresh

  /** `hash` replaces hashBlock (tests force collisions with it). */
  constructor(
    numBlocks: number,
    blockSize: number,
    enablePrefixCaching = true,
    private readonly hash: typeof hashBlock = hashBlock,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1)
      throw new RangeError(`BlockManager: numBlocks must be a positive integer, got ${numBlocks}`);
    if (!Number.isInteger(blockSize) || blockSize < 1)
      throw new RangeError(`BlockManager: blockSize must be a positive integer, got ${blockSize}`);
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.enablePrefixCaching = enablePrefixCaching;
    this.refCount = new Int32Array(numBlocks);
    this.prev = new Int32Array(numBlocks);
    this.next = new Int32Array(numBlocks);
    this.blockHash = new Float64Array(numBlocks).fill(NaN);
    this.blockTokens = new Array<Int32Array | null>(numBlocks).fill(null);
    this.parentBlock = new Int32Array(numBlocks).fill(NONE);
    this.parentEpoch = new Uint32Array(numBlocks);
    this.epoch = new Uint32Array(numBlocks);
    this.numFree = 0;
    for (let b = 0; b < numBlocks; ++b) this.pushBack(b);
  }

  /** Blocks no sequence holds (some may still hold a cached prefix until reused). */
  get numFreeBlocks(): number {
    return this.numFree;
  }

  get numUsedBlocks(): number {
    return this.numBlocks - this.numFree;
  }

  /** Blocks whose contents the prefix cache can hand out. */
  get numCachedBlocks(): number {
    return this.cached.size;
  }

  /** Blocks a sequence needs to hold `numTokens` tokens. */
  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /**
   * The longest run of the sequence's leading full blocks already in the cache, leaving at least one token to compute
   * (its logits are the next token's). Takes nothing; `allocate` does.
   */
  findCachedPrefix(seq: Sequence): number[] {
    if (!this.enablePrefixCaching || seq.numComputedTokens !== 0) return [];
    const bs = this.blockSize;
    const limit = Math.floor((seq.numTokens - 1) / bs);
    const hits: number[] = [];
    let parent = NONE;
    for (let i = 0; i < limit; ++i) {
      const h = this.hashOf(seq, i);
      const b = this.cached.get(h);
      if (b === undefined || !this.holds(b, seq, i, parent)) break;
      hits.push(b);
      parent = b;
    }
    return hits;
  }

  /**
   * Makes room for `numNewTokens` more tokens of the sequence, first taking the cached prefix blocks `cachedBlocks`
   * (from findCachedPrefix) for a sequence with nothing computed. Returns false, changing nothing, when there are
   * not enough free blocks.
   */
  allocate(seq: Sequence, numNewTokens: number, cachedBlocks: readonly number[] = []): boolean {
    const bs = this.blockSize;
    const computed = seq.numComputedTokens + cachedBlocks.length * bs;
    const need = this.blocksFor(computed + numNewTokens) - seq.blockTable.length - cachedBlocks.length;
    let revived = 0; // cached blocks that sit in the free queue: taking them uses free capacity too
    for (const b of cachedBlocks) if (this.refCount[b] === 0) ++revived;
    if (Math.max(0, need) + revived > this.numFree) return false;
    if (seq.numComputedTokens === 0 && seq.blockTable.length === 0) {
      if (this.enablePrefixCaching) {
        this.prefixCache.queries += seq.numTokens;
        this.prefixCache.hits += cachedBlocks.length * bs;
      }
      if (seq.numPreemptions === 0) seq.numCachedTokens = cachedBlocks.length * bs;
      seq.numCachedBlocks = cachedBlocks.length;
    }
    for (const b of cachedBlocks) {
      if (this.refCount[b] === 0) this.unlink(b);
      ++this.refCount[b]!;
      seq.blockTable.push(b);
    }
    seq.numComputedTokens = computed;
    for (let i = 0; i < need; ++i) seq.blockTable.push(this.takeFree());
    return true;
  }

  /** Registers the sequence's blocks that are now full of computed tokens, so later sequences can share them. */
  cacheFullBlocks(seq: Sequence): void {
    if (!this.enablePrefixCaching) return;
    const full = Math.floor(seq.numComputedTokens / this.blockSize);
    for (let i = seq.numCachedBlocks; i < full; ++i) {
      const b = seq.blockTable[i]!;
      const h = this.hashOf(seq, i);
      // Another block may hold the same tokens (computed in the same step): keep that one, leave this one uncached.
      if (!this.cached.has(h) && Number.isNaN(this.blockHash[b]!)) {
        this.cached.set(h, b);
        this.blockHash[b] = h;
        this.blockTokens[b] = Int32Array.from(seq.tokens(i * this.blockSize, (i + 1) * this.blockSize));
        const parent = i === 0 ? NONE : seq.blockTable[i - 1]!;
        this.parentBlock[b] = parent;
        this.parentEpoch[b] = parent === NONE ? 0 : this.epoch[parent]!;
      }
    }
    seq.numCachedBlocks = full;
  }

  /** Gives back every block of the sequence, last first, so its tail is reused before its (more shareable) head. */
  free(seq: Sequence): void {
    for (let i = seq.blockTable.length - 1; i >= 0; --i) {
      const b = seq.blockTable[i]!;
      if (--this.refCount[b]! === 0) this.pushBack(b);
    }
    seq.blockTable = [];
    seq.numCachedBlocks = 0;
  }

  /** Reference count of a block: how many block tables hold it. */
  refCountOf(block: number): number {
    return this.refCount[block]!;
  }

  /**
   * Throws unless the books balance for these live sequences: ref counts equal the tables that hold each block, a
   * block is free exactly when nobody holds it, the free queue is a well-formed list of numFreeBlocks entries, and
   * every cache entry points at a block that says it has that hash. For tests; O(numBlocks).
   */
  checkInvariants(sequences: Iterable<Sequence>): void {
    const holders = new Int32Array(this.numBlocks);
    for (const s of sequences) {
      const seen = new Set<number>();
      for (const b of s.blockTable) {
        if (!(b >= 0 && b < this.numBlocks))
          throw new Error(`invariant: ${s.requestId} holds block ${b}, outside [0, ${this.numBlocks})`);
        if (seen.has(b)) throw new Error(`invariant: ${s.requestId} holds block ${b} twice`);
        seen.add(b);
        ++holders[b]!;
      }
      if (s.blockTable.length < this.blocksFor(s.numComputedTokens))
        throw new Error(
          `invariant: ${s.requestId} has ${s.numComputedTokens} computed tokens in ${s.blockTable.length} blocks`,
        );
    }
    const inQueue = new Uint8Array(this.numBlocks);
    let n = 0;
    for (let b = this.head, last = NONE; b !== NONE; last = b, b = this.next[b]!) {
      if (this.prev[b] !== last) throw new Error(`invariant: free queue link broken at block ${b}`);
      if (inQueue[b]) throw new Error(`invariant: block ${b} is in the free queue twice`);
      inQueue[b] = 1;
      if (++n > this.numBlocks) throw new Error('invariant: the free queue has a cycle');
    }
    if (n !== this.numFree)
      throw new Error(`invariant: the free queue has ${n} blocks, numFreeBlocks says ${this.numFree}`);
    for (let b = 0; b < this.numBlocks; ++b) {
      if (this.refCount[b] !== holders[b])
        throw new Error(`invariant: block ${b} has refCount ${this.refCount[b]} but ${holders[b]} tables hold it`);
      if ((this.refCount[b] === 0) !== (inQueue[b] === 1))
        throw new Error(
          `invariant: block ${b} is ${inQueue[b] ? 'free' : 'not free'} with refCount ${this.refCount[b]}`,
        );
    }
    for (const [h, b] of this.cached)
      if (this.blockHash[b] !== h)
        throw new Error(`invariant: cache entry ${h} points at block ${b}, whose hash is ${this.blockHash[b]}`);
  }

  private hashOf(seq: Sequence, i: number): number {
    const hashes = seq.blockHashes;
    const bs = this.blockSize;
    while (hashes.length <= i) {
      const j = hashes.length;
      hashes.push(this.hash(j === 0 ? 0 : hashes[j - 1]!, seq.tokens(j * bs, (j + 1) * bs)));
    }
    return hashes[i]!;
  }

  /** Whether cached block b holds block i of the sequence, computed after the block `parent` (NONE for i = 0). */
  private holds(b: number, seq: Sequence, i: number, parent: number): boolean {
    if (this.parentBlock[b] !== parent || (parent !== NONE && this.parentEpoch[b] !== this.epoch[parent])) return false;
    const toks = this.blockTokens[b]!;
    const base = i * this.blockSize;
    for (let j = 0; j < toks.length; ++j) if (toks[j] !== seq.tokenAt(base + j)) return false;
    return true;
  }

  private takeFree(): number {
    const b = this.head;
    if (b === NONE) throw new Error('BlockManager: no free block (allocate checks first)');
    this.unlink(b);
    // Reused: forget the prefix it held.
    const h = this.blockHash[b]!;
    if (!Number.isNaN(h)) {
      this.cached.delete(h);
      this.blockHash[b] = NaN;
      this.blockTokens[b] = null;
      this.parentBlock[b] = NONE;
    }
    ++this.epoch[b]!;
    this.refCount[b] = 1;
    return b;
  }

  private pushBack(b: number): void {
    this.prev[b] = this.tail;
    this.next[b] = NONE;
    if (this.tail === NONE) this.head = b;
    else this.next[this.tail] = b;
    this.tail = b;
    ++this.numFree;
  }

  private unlink(b: number): void {
    const p = this.prev[b]!,
      n = this.next[b]!;
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
    --this.numFree;
  }
}
