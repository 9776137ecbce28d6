// What a benchmark sends: random-token prompts of exact lengths and their arrival times.
import { Rng } from '../sampling/rng.js';

/**
 * `count` prompts of exactly `length` token ids drawn uniformly from [0, vocabSize) less the `exclude`d ids (BOS,
 * EOS and other specials), as vLLM's random dataset does. Sent as ids, so no tokenizer round trip changes a length.
 */
export function randomPrompts(
  count: number,
  length: number,
  vocabSize: number,
  exclude: Iterable<number>,
  seed: number,
): number[][] {
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`randomPrompts: count must be a positive integer, got ${count}`);
  if (!Number.isInteger(length) || length < 1)
    throw new RangeError(`randomPrompts: length must be a positive integer, got ${length}`);
  const banned = new Set([...exclude].filter((t) => t >= 0 && t < vocabSize));
  const allowed: number[] = [];
  for (let t = 0; t < vocabSize; ++t) if (!banned.has(t)) allowed.push(t);
  if (allowed.length === 0) throw new RangeError('randomPrompts: every token id is excluded');
  const rng = new Rng(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length }, () => allowed[Math.floor(rng.next() * allowed.length)]!),
  );
}

/**
 * Arrival offsets in milliseconds for `count` requests at `rate` requests per second: a Poisson process (exponential
 * gaps with mean 1/rate, vLLM's burstiness 1), the first at 0. `Infinity` sends them all at 0.
 */
export function poissonArrivals(count: number, rate: number, seed: number): number[] {
  if (!(rate > 0)) throw new RangeError(`poissonArrivals: rate must be a positive number or Infinity, got ${rate}`);
  if (rate === Infinity) return new Array<number>(count).fill(0);
  const rng = new Rng(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < count; ++i) {
    out.push(t);
    t += (-Math.log(1 - rng.next()) / rate) * 1000;
  }
  return out;
}

/** Parses --request-rate: a positive number of requests per second, or "inf". */
export function parseRate(text: string): number {
  if (text.trim().toLowerCase() === 'inf') return Infinity;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v <= 0)
    throw new RangeError(`--request-rate: expected a positive number or "inf", got "${text}"`);
  return v;
}

/** A counting semaphore: `run` waits until fewer than `limit` tasks hold a slot. */
export class Limiter {
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`Limiter: limit must be at least 1, got ${limit}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    else ++this.active;
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter (active stays the same), or give it back.
      const next = this.queue.shift();
      if (next) next();
      else --this.active;
    }
  }
}
