// The sampler: penalties (sparse, over the ids a sequence has seen) in TypeScript, then the native row sampler for
// temperature / top-k / top-p / min-p over the whole vocabulary, and logprobs of the raw model output.
import { randomInt } from 'node:crypto';
import type { OpProfiler } from '../calls.js';
import { opsWith } from '../ops/profiled.js';
import type { GrammarMatcher } from '../structured/grammars.js';
import { describeValue, Tensor } from '../tensor.js';
import { type ResolvedSamplingParams, resolveSamplingParams, type SamplingParams } from './params.js';
import { Rng } from './rng.js';

/** What a sequence has seen, for penalties, and its own generator when seeded. One per sequence. */
export class SamplingState {
  readonly params: ResolvedSamplingParams;
  readonly outputTokenIds: number[] = [];
  readonly promptTokenIds: readonly number[];
  /** Occurrences of each id in the output. */
  readonly outputCounts = new Map<number, number>();
  /** Set for seeded requests; unseeded ones draw from the sampler's generator. */
  readonly rng: Rng | null;
  /** Where a constrained sequence is in its grammar (set by the engine core; the runner masks its logits). */
  matcher: GrammarMatcher | null = null;
  /** Each bad word's token ids (set by the engine core from params.badWords). */
  badWordsTokenIds: number[][] = [];

  constructor(
    params: SamplingParams | ResolvedSamplingParams,
    promptTokenIds: readonly number[] = [],
    vocabSize?: number,
  ) {
    this.params = resolveSamplingParams(params, vocabSize);
    this.promptTokenIds = promptTokenIds;
    this.rng = this.params.seed === null ? null : new Rng(this.params.seed);
  }

  /** Records a sampled token; false if the grammar refused it (only when other filters left it nothing else). */
  append(id: number): boolean {
    this.outputTokenIds.push(id);
    this.outputCounts.set(id, (this.outputCounts.get(id) ?? 0) + 1);
    return this.matcher === null || this.matcher.accept(id);
  }

  /** Frees the grammar matcher (the sequence ended). */
  dispose(): void {
    this.matcher?.dispose();
    this.matcher = null;
  }
}

export interface TokenLogprob {
  token: number;
  logprob: number;
}

/** The sampled token's logprob and the `n` most likely tokens (of the raw model output, as vLLM returns). */
export interface TokenLogprobs extends TokenLogprob {
  top: TokenLogprob[];
}

export interface SampleResult {
  tokens: Int32Array;
  /** Per row: null unless that row's params ask for logprobs. */
  logprobs: (TokenLogprobs | null)[];
}

export class Sampler {
  readonly vocabSize: number;
  private readonly rng: Rng;
  private hostLogits = new Float32Array(0); // the logits copied to the host, reused each call

  /** `seed` seeds the draws of unseeded requests (default: random). */
  constructor(vocabSize: number, opts: { seed?: number } = {}) {
    if (!Number.isInteger(vocabSize) || vocabSize < 1)
      throw new RangeError(`Sampler: vocabSize must be a positive integer, got ${describeValue(vocabSize)}`);
    this.vocabSize = vocabSize;
    this.rng = new Rng(opts.seed ?? randomInt(2 ** 47));
  }

  /**
   * One token id per row of `logits` ([batch, vocab], a tensor or a row-major Float32Array). `rows` is one
   * SamplingParams for every row, or one entry per row: a SamplingState (a sequence: its params, the history its
   * penalties read, its seeded generator; the caller appends the sampled ids to it) or plain SamplingParams (no
   * history: a seeded row starts its seed's sequence afresh on every call).
   */
  sample(
    logits: Tensor | Float32Array,
    rows: SamplingParams | readonly (SamplingParams | SamplingState)[],
  ): Int32Array {
    return this.sampleWithLogprobs(logits, rows).tokens;
  }

  /** sample(), and each row's logprobs where its params ask for them; `profiler` times the copy and the kernel. */
  sampleWithLogprobs(
    logits: Tensor | Float32Array,
    rows: SamplingParams | readonly (SamplingParams | SamplingState)[],
    profiler?: OpProfiler,
  ): SampleResult {
    const V = this.vocabSize;
    let data: Float32Array;
    let numRows: number;
    if (logits instanceof Tensor) {
      if (logits.dtype === 'int32' || logits.ndim !== 2 || logits.shape[1] !== V)
        throw new RangeError(`Sampler.sample: logits must be a float tensor [batch, ${V}], got ${logits.toString()}`);
      numRows = logits.shape[0]!;
      // one host buffer reused step after step: a fresh 128 KB+ array costs more than the copy into it
      if (this.hostLogits.length < numRows * V) this.hostLogits = new Float32Array(numRows * V);
      data = logits.toArray(profiler, this.hostLogits.subarray(0, numRows * V)) as Float32Array;
    } else if (logits instanceof Float32Array) {
      if (logits.length % V !== 0)
        throw new RangeError(`Sampler.sample: logits has ${logits.length} values, not a multiple of vocabSize ${V}`);
      numRows = logits.length / V;
      data = logits;
    } else {
      throw new TypeError(`Sampler.sample: logits must be a Tensor or a Float32Array, got ${describeValue(logits)}`);
    }
    const list = isList(rows) ? rows : null;
    if (list && list.length !== numRows)
      throw new RangeError(`Sampler.sample: rows has ${list.length} entries for ${numRows} rows of logits`);
    const shared = list ? null : resolveSamplingParams(rows as SamplingParams, V);
    const resolved: ResolvedSamplingParams[] = [];
    const rowStates: (SamplingState | undefined)[] = [];
    for (let r = 0; r < numRows; ++r) {
      const p = list ? list[r]! : null;
      const state = p instanceof SamplingState ? p : undefined;
      rowStates.push(state);
      resolved.push(
        state?.params ?? (p === null || p instanceof SamplingState ? shared! : resolveSamplingParams(p, V)),
      );
    }

    // Logprobs come from the raw logits, before penalties and temperature.
    const raw = data;
    const logZ = new Float64Array(numRows);
    const logprobs: (TokenLogprobs | null)[] = resolved.map((p, r) => {
      if (p.logprobs === null) return null;
      const row = raw.subarray(r * V, (r + 1) * V);
      logZ[r] = logSumExp(row);
      return { token: -1, logprob: 0, top: topLogprobs(row, p.logprobs, logZ[r]) };
    });

    const hasPenalty = (p: ResolvedSamplingParams) =>
      p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0;
    const hasProcessor = (p: ResolvedSamplingParams, s: SamplingState | undefined) =>
      p.logitBias !== null || p.allowedTokenIds !== null || (s !== undefined && s.badWordsTokenIds.length > 0);
    if (resolved.some((p, r) => hasProcessor(p, rowStates[r]) || (rowStates[r] && hasPenalty(p)))) {
      data = Float32Array.from(data);
      for (let r = 0; r < numRows; ++r) {
        const state = rowStates[r];
        const row = data.subarray(r * V, (r + 1) * V);
        if (state && hasPenalty(state.params)) applyPenalties(row, state);
        if (hasProcessor(resolved[r]!, state)) applyLogitProcessors(row, resolved[r]!, state);
      }
    }
    const temperature = new Float32Array(numRows);
    const topK = new Int32Array(numRows);
    const topP = new Float32Array(numRows);
    const minP = new Float32Array(numRows);
    const uniform = new Float64Array(numRows);
    for (let r = 0; r < numRows; ++r) {
      const p = resolved[r]!;
      temperature[r] = p.temperature;
      topK[r] = p.topK;
      topP[r] = p.topP;
      minP[r] = p.minP;
      const state = rowStates[r];
      // Greedy numRows draw nothing, so a seeded sequence's draws do not depend on its neighbours.
      if (p.temperature > 0) uniform[r] = (state?.rng ?? (p.seed !== null ? new Rng(p.seed) : this.rng)).next();
    }
    const tokens = opsWith(profiler).sampleRows(data, numRows, V, { temperature, topK, topP, minP, uniform });
    for (let r = 0; r < numRows; ++r) {
      const lp = logprobs[r];
      if (lp) {
        lp.token = tokens[r]!;
        lp.logprob = raw[r * V + tokens[r]!]! - logZ[r]!;
      }
    }
    return { tokens, logprobs };
  }
}

function isList(
  p: SamplingParams | readonly (SamplingParams | SamplingState)[],
): p is readonly (SamplingParams | SamplingState)[] {
  return Array.isArray(p);
}

/** vLLM's penalties: repetition over prompt and output ids; presence and frequency over output ids. */
export function applyPenalties(row: Float32Array, s: SamplingState): void {
  const { repetitionPenalty: rep, presencePenalty: pres, frequencyPenalty: freq } = s.params;
  if (rep !== 1) {
    const seen = new Set<number>([...s.promptTokenIds, ...s.outputTokenIds]);
    for (const id of seen) {
      if (id < 0 || id >= row.length) continue;
      const v = row[id]!;
      row[id] = v > 0 ? v / rep : v * rep;
    }
  }
  if (pres !== 0 || freq !== 0)
    for (const [id, n] of s.outputCounts) if (id >= 0 && id < row.length) row[id] = row[id]! - freq * n - pres;
}

/**
 * vLLM's logit processors, after the penalties: allowed_token_ids (every other id to -inf), bad_words (a word's last
 * token to -inf where the output ends with the rest of it), then logit_bias added.
 */
export function applyLogitProcessors(row: Float32Array, p: ResolvedSamplingParams, s?: SamplingState): void {
  if (p.allowedTokenIds !== null) {
    const keep = p.allowedTokenIds.map((id) => [id, row[id]!] as const);
    row.fill(-Infinity);
    for (const [id, v] of keep) row[id] = v;
  }
  if (s)
    for (const word of s.badWordsTokenIds) {
      const out = s.outputTokenIds;
      const prefix = word.length - 1;
      if (prefix > out.length) continue;
      let match = true;
      for (let j = 0; j < prefix && match; ++j) match = out[out.length - prefix + j] === word[j];
      if (match) row[word[prefix]!] = -Infinity;
    }
  if (p.logitBias !== null) for (const [id, b] of Object.entries(p.logitBias)) row[Number(id)] = row[Number(id)]! + b;
}

function logSumExp(row: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < row.length; ++i) if (row[i]! > m) m = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; ++i) sum += Math.exp(row[i]! - m);
  return m + Math.log(sum);
}

/** The n most likely tokens: highest logit first, the lower id on ties (n <= 20, so an insertion list). */
function topLogprobs(row: Float32Array, n: number, logZ: number): TokenLogprob[] {
  const top: TokenLogprob[] = [];
  if (n === 0) return top;
  for (let i = 0; i < row.length; ++i) {
    const v = row[i]!;
    if (top.length === n && v <= top[n - 1]!.logprob) continue;
    let j = top.length < n ? top.length : n - 1;
    top[j] = { token: i, logprob: v };
    while (j > 0 && top[j - 1]!.logprob < v) {
      [top[j - 1], top[j]] = [top[j]!, top[j - 1]!];
      --j;
    }
  }
  for (const t of top) t.logprob -= logZ;
  return top;
}
