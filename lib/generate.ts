// Static-batch generation: prefill every prompt in one step, then decode the unfinished ones together until each
// stops. The paged-KV engine (continuous batching, preemption, prefix caching) builds on the same pieces.
import type { LoadedModel } from './model/loader.js';
import type { KvCache } from './model/llama.js';
import { disposeKvCache } from './model/llama.js';
import type { SamplingParams } from './sampling/params.js';
import { Sampler, SamplingState, type TokenLogprobs } from './sampling/sampler.js';
import { describeValue, Tensor } from './tensor.js';
import { IncrementalDetokenizer } from './tokenizer/detokenizer.js';

export type FinishReason = 'stop' | 'length';

export interface RequestTimings {
  /** performance.now() milliseconds: when the request arrived, its first token, every token, the finish. */
  arrival: number;
  firstToken: number;
  tokens: number[];
  finish: number;
}

export interface GenerationResult {
  promptTokenIds: number[];
  text: string;
  tokenIds: number[];
  finishReason: FinishReason;
  /** The stop string or token id that ended the output, if any. */
  stopReason: string | number | null;
  logprobs: TokenLogprobs[] | null;
  timings: RequestTimings;
}

export interface GenerateOptions {
  /** Called with each piece of new text as it is decoded (never half a character, never part of a stop string). */
  onText?: (index: number, delta: string) => void;
  sampler?: Sampler;
  blockSize?: number;
}

class Running {
  readonly state: SamplingState;
  readonly detok: IncrementalDetokenizer;
  readonly timings: RequestTimings;
  readonly maxStop: number;
  blocks: number[] = [];
  emitted = 0;
  text = '';
  finish: FinishReason | null = null;
  stopReason: string | number | null = null;
  logprobs: TokenLogprobs[] | null;

  constructor(readonly index: number, readonly promptIds: number[], params: SamplingParams, loaded: LoadedModel, arrival: number) {
    this.state = new SamplingState(params, promptIds, loaded.config.vocabSize);
    this.detok = new IncrementalDetokenizer(loaded.tokenizer, promptIds, this.state.params.skipSpecialTokens);
    this.timings = { arrival, firstToken: 0, tokens: [], finish: 0 };
    this.maxStop = Math.max(0, ...this.state.params.stop.map((s) => s.length));
    this.logprobs = this.state.params.logprobs === null ? null : [];
  }

  /** Tokens in the sequence so far: prompt and output. */
  get len(): number {
    return this.promptIds.length + this.state.outputTokenIds.length;
  }
}

async function encodePrompt(loaded: LoadedModel, p: string | readonly number[], i: number): Promise<number[]> {
  if (typeof p === 'string') return loaded.tokenizer.encode(p);
  if (!Array.isArray(p) || p.length === 0 || !p.every((t) => Number.isInteger(t) && t >= 0 && t < loaded.config.vocabSize))
    throw new RangeError(`generate: prompts[${i}] must be a string or a non-empty array of token ids in [0, ${loaded.config.vocabSize}), got ${describeValue(p)}`);
  return Array.from(p as readonly number[]);
}

/**
 * Generates a completion for each prompt (text, or token ids) with its sampling params (one set for all, or one
 * per prompt). The text excludes the prompt; a stop string is cut from it; EOS and stop token ids end the output.
 */
export async function generate(loaded: LoadedModel, prompts: string | number[] | (string | number[])[], params: SamplingParams | SamplingParams[] = {}, opts: GenerateOptions = {}): Promise<GenerationResult[]> {
  const arrival = performance.now();
  const list: (string | number[])[] = typeof prompts === 'string' || (Array.isArray(prompts) && typeof prompts[0] === 'number') ? [prompts as string | number[]] : prompts as (string | number[])[];
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`generate: prompts must be a string, token ids, or a non-empty array of them, got ${describeValue(prompts)}`);
  if (Array.isArray(params) && params.length !== list.length) throw new RangeError(`generate: params has ${params.length} entries for ${list.length} prompts`);
  const { model, config, tokenizer } = loaded;
  const maxLen = config.maxPositionEmbeddings;
  const seqs: Running[] = [];
  for (let i = 0; i < list.length; ++i) {
    const ids = await encodePrompt(loaded, list[i]!, i);
    if (ids.length === 0) throw new RangeError(`generate: prompts[${i}] encodes to no tokens (and the tokenizer adds no BOS)`);
    if (ids.length >= maxLen) throw new RangeError(`generate: prompts[${i}] has ${ids.length} tokens; the model's context is ${maxLen}`);
    seqs.push(new Running(i, ids, Array.isArray(params) ? params[i]! : params, loaded, arrival));
  }
  const eos = new Set([...config.eosTokenIds, ...tokenizer.eosTokenIds]);
  const sampler = opts.sampler ?? new Sampler(config.vocabSize);
  const blockSize = opts.blockSize ?? 16;
  // Each sequence owns the blocks for its whole budget: prompt + maxTokens, capped by the context length.
  let numBlocks = 0;
  for (const s of seqs) {
    const cap = Math.min(maxLen, s.promptIds.length + s.state.params.maxTokens);
    const n = Math.ceil(cap / blockSize);
    s.blocks = Array.from({ length: n }, (_, j) => numBlocks + j);
    numBlocks += n;
  }
  const maxBlocks = Math.max(...seqs.map((s) => s.blocks.length));
  const kv: KvCache = model.allocateKvCache(numBlocks, blockSize);
  const device = model.device;
  const int32 = (a: number[], shape?: number[]) => Tensor.fromArray(Int32Array.from(a), shape ?? [a.length], { dtype: 'int32', device });
  try {
    let active = seqs;
    let prefill = true;
    while (active.length > 0) {
      const tokenIds: number[] = [], positions: number[] = [], slots: number[] = [], qsl = [0], seqLens: number[] = [], tables: number[] = [];
      for (const s of active) {
        const ids = prefill ? s.promptIds : [s.state.outputTokenIds.at(-1)!];
        const start = s.len - ids.length;
        for (let j = 0; j < ids.length; ++j) {
          const pos = start + j;
          tokenIds.push(ids[j]!);
          positions.push(pos);
          slots.push(s.blocks[Math.floor(pos / blockSize)]! * blockSize + (pos % blockSize));
        }
        qsl.push(tokenIds.length);
        seqLens.push(s.len);
        for (let j = 0; j < maxBlocks; ++j) tables.push(s.blocks[j] ?? 0);
      }
      const inputs = [int32(tokenIds), int32(positions), int32(slots), int32(qsl), int32(seqLens), int32(tables, [active.length, maxBlocks]), int32(qsl.slice(1).map((q) => q - 1))] as const;
      let sampled;
      try {
        const logits = model.forward({
          tokenIds: inputs[0], positions: inputs[1], slotMapping: inputs[2], logitsIndices: inputs[6],
          attention: { queryStartLoc: inputs[3], seqLens: inputs[4], blockTables: inputs[5], scale: 1 / Math.sqrt(config.headDim),
            maxSeqLen: Math.max(...seqLens), maxQueryLen: prefill ? Math.max(...active.map((s) => s.promptIds.length)) : 1 },
        }, kv);
        sampled = sampler.sampleWithLogprobs(logits, active.map((s) => s.state), active.map((s) => s.state));
      } finally {
        inputs.forEach((t) => t.dispose());
      }
      const now = performance.now();
      for (let r = 0; r < active.length; ++r) {
        const s = active[r]!;
        const token = sampled.tokens[r]!;
        s.state.append(token);
        s.timings.tokens.push(now);
        if (s.timings.tokens.length === 1) s.timings.firstToken = now;
        const lp = sampled.logprobs[r];
        if (s.logprobs && lp) s.logprobs.push(lp);
        await advance(s, token, eos, maxLen, opts);
      }
      active = active.filter((s) => s.finish === null);
      prefill = false;
    }
  } finally {
    disposeKvCache(kv);
  }
  return seqs.map((s) => ({
    promptTokenIds: s.promptIds, text: s.text, tokenIds: s.state.outputTokenIds, finishReason: s.finish!,
    stopReason: s.stopReason, logprobs: s.logprobs, timings: s.timings,
  }));
}

/** Decodes the new token, applies the stop rules, and streams what is safe to show. */
async function advance(s: Running, token: number, eos: Set<number>, maxLen: number, opts: GenerateOptions): Promise<void> {
  const p = s.state.params;
  if (!p.ignoreEos && eos.has(token)) {
    s.finish = 'stop';
  } else if (p.stopTokenIds.includes(token)) {
    s.finish = 'stop';
    s.stopReason = token;
  } else {
    const delta = await s.detok.push(token);
    s.text += delta;
    if (s.maxStop > 0 && delta.length > 0) {
      // Search only where a stop string could newly end.
      const from = Math.max(0, s.text.length - delta.length - s.maxStop + 1);
      let cut = -1;
      for (const stop of p.stop) {
        const at = s.text.indexOf(stop, from);
        if (at >= 0 && (cut < 0 || at < cut)) {
          cut = at;
          s.stopReason = stop;
        }
      }
      if (cut >= 0) {
        s.text = s.text.slice(0, cut);
        s.finish = 'stop';
      }
    }
  }
  if (s.finish === null && (s.state.outputTokenIds.length >= p.maxTokens || s.len >= maxLen)) s.finish = 'length';
  if (s.finish !== null) {
    if (s.stopReason === null || typeof s.stopReason === 'number') s.text += await s.detok.flush();
    s.timings.finish = performance.now();
  }
  // Hold back what could still become the start of a stop string.
  const safe = s.finish !== null ? s.text.length : Math.max(s.emitted, s.text.length - Math.max(0, s.maxStop - 1));
  if (safe > s.emitted) {
    opts.onText?.(s.index, s.text.slice(s.emitted, safe));
    s.emitted = safe;
  }
}

