// SamplingParams: vLLM's fields in camelCase, with vLLM's defaults, checked once when a request arrives.
import { resolveStructured, type StructuredConstraint, type StructuredFields } from '../structured/constraint.js';
import { describeValue } from '../tensor.js';

/**
 * Besides the sampling settings, a request may constrain its output (StructuredFields: vLLM's structuredOutputs,
 * OpenAI's responseFormat, vLLM's guidedJson / guidedRegex / guidedChoice / guidedGrammar; one of them).
 */
export interface SamplingParams extends StructuredFields {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 or -1 = all (default). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches topP; 1 = off (default). */
  topP?: number;
  /** Drop tokens less than minP times as likely as the most likely one; 0 = off (default). */
  minP?: number;
  /** > 1 discourages tokens already in the prompt or output (logit / p if positive, * p if negative). Default 1. */
  repetitionPenalty?: number;
  /** Subtracted once from the logit of every token already in the output. Default 0. */
  presencePenalty?: number;
  /** Subtracted per occurrence from the logit of tokens in the output. Default 0. */
  frequencyPenalty?: number;
  /** Same seed, same prompt, same model: same tokens. Default: not seeded. */
  seed?: number | null;
  /** Most tokens to generate. Default 16, as in vLLM. */
  maxTokens?: number;
  /** Strings that end the output (not included in it). */
  stop?: string | string[];
  /** Token ids that end the output (included in the ids, not in the text). */
  stopTokenIds?: number[];
  /** Keep generating past the model's end-of-sequence tokens. */
  ignoreEos?: boolean;
  /** Return the logprob of each sampled token and this many top alternatives (0 = only the sampled one). */
  logprobs?: number | null;
  /** Leave special tokens out of the text (default true). */
  skipSpecialTokens?: boolean;
  /** OpenAI's logit_bias: added to these tokens' logits before sampling, each in [-100, 100]. */
  logitBias?: Record<number | string, number> | null;
  /** vLLM's allowed_token_ids: sample only among these ids. */
  allowedTokenIds?: number[] | null;
  /** vLLM's bad_words: words never generated (each as tokenised alone and after a space). */
  badWords?: string[] | null;
}

export interface ResolvedSamplingParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  seed: number | null;
  maxTokens: number;
  stop: string[];
  stopTokenIds: number[];
  ignoreEos: boolean;
  logprobs: number | null;
  skipSpecialTokens: boolean;
  /** The constraint on the output, or null. */
  structured: StructuredConstraint | null;
  /** {token id: bias}, or null. */
  logitBias: Record<string, number> | null;
  allowedTokenIds: number[] | null;
  badWords: string[];
}

export const MAX_LOGPROBS = 20;

function number(
  p: Record<string, unknown>,
  key: string,
  fallback: number,
  ok: (v: number) => boolean,
  range: string,
): number {
  const v = p[key] ?? fallback;
  if (typeof v !== 'number') throw new TypeError(`SamplingParams: ${key} must be a number, got ${describeValue(v)}`);
  if (!ok(v)) throw new RangeError(`SamplingParams: ${key} must be ${range}, got ${v}`);
  return v;
}

const isInt = Number.isInteger;

/** Fills in the defaults and checks every field (TypeError / RangeError naming it). */
export function resolveSamplingParams(params: SamplingParams = {}, vocabSize?: number): ResolvedSamplingParams {
  if (typeof params !== 'object' || params === null)
    throw new TypeError(`SamplingParams: expected an object, got ${describeValue(params)}`);
  const p = params as Record<string, unknown>;
  const stop = p['stop'] ?? [];
  const stops = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(stops) || !stops.every((s) => typeof s === 'string' && s.length > 0))
    throw new TypeError(
      `SamplingParams: stop must be a non-empty string or an array of them, got ${describeValue(stop)}`,
    );
  const stopIds = p['stopTokenIds'] ?? [];
  if (
    !Array.isArray(stopIds) ||
    !stopIds.every((t) => isInt(t) && t >= 0 && (vocabSize === undefined || t < vocabSize))
  )
    throw new RangeError(
      `SamplingParams: stopTokenIds must be token ids${vocabSize === undefined ? '' : ` in [0, ${vocabSize})`}, got ` +
        `${describeValue(stopIds)}`,
    );
  const seed = p['seed'] ?? null;
  if (seed !== null && (typeof seed !== 'number' || !isInt(seed)))
    throw new TypeError(`SamplingParams: seed must be an integer or null, got ${describeValue(seed)}`);
  const logprobs = p['logprobs'] ?? null;
  if (
    logprobs !== null &&
    (typeof logprobs !== 'number' || !isInt(logprobs) || logprobs < 0 || logprobs > MAX_LOGPROBS)
  )
    throw new RangeError(
      `SamplingParams: logprobs must be an integer in [0, ${MAX_LOGPROBS}] or null, got ${describeValue(logprobs)}`,
    );
  for (const k of ['ignoreEos', 'skipSpecialTokens'])
    if (p[k] !== undefined && typeof p[k] !== 'boolean')
      throw new TypeError(`SamplingParams: ${k} must be a boolean, got ${describeValue(p[k])}`);
  const topK = number(p, 'topK', 0, (v) => isInt(v) && v >= -1, 'an integer >= -1 (0 or -1 = off)');
  const isId = (t: unknown): t is number =>
    isInt(t) && (t as number) >= 0 && (vocabSize === undefined || (t as number) < vocabSize);
  const vocab = vocabSize === undefined ? '' : ` in [0, ${vocabSize})`;
  const biasIn = p['logitBias'] ?? null;
  let logitBias: Record<string, number> | null = null;
  if (biasIn !== null) {
    if (typeof biasIn !== 'object' || Array.isArray(biasIn))
      throw new TypeError(`SamplingParams: logitBias must be an object {tokenId: bias}, got ${describeValue(biasIn)}`);
    const entries = Object.entries(biasIn).map(([k, v]) => {
      const id = Number(k);
      if (!/^\d+$/.test(k) || !isId(id))
        throw new RangeError(`SamplingParams: logitBias key ${JSON.stringify(k)} is not a token id${vocab}`);
      if (typeof v !== 'number' || !(v >= -100 && v <= 100))
        throw new RangeError(
          `SamplingParams: logitBias[${k}] must be a number in [-100, 100], got ${describeValue(v)}`,
        );
      return [String(id), v] as const;
    });
    if (entries.length > 0) logitBias = Object.fromEntries(entries);
  }
  const allowed = p['allowedTokenIds'] ?? null;
  if (allowed !== null && (!Array.isArray(allowed) || allowed.length === 0 || !allowed.every(isId)))
    throw new RangeError(
      `SamplingParams: allowedTokenIds must be a non-empty array of token ids${vocab}, got ${describeValue(allowed)}`,
    );
  const badWords = p['badWords'] ?? [];
  if (!Array.isArray(badWords) || !badWords.every((w) => typeof w === 'string' && w.trim().length > 0))
    throw new TypeError(
      `SamplingParams: badWords must be an array of non-blank strings, got ${describeValue(badWords)}`,
    );
  return {
    temperature: number(p, 'temperature', 1, (v) => Number.isFinite(v) && v >= 0, 'a finite number >= 0'),
    topK: topK < 0 ? 0 : topK,
    topP: number(p, 'topP', 1, (v) => v > 0 && v <= 1, 'in (0, 1]'),
    minP: number(p, 'minP', 0, (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    repetitionPenalty: number(p, 'repetitionPenalty', 1, (v) => Number.isFinite(v) && v > 0, 'a finite number > 0'),
    presencePenalty: number(p, 'presencePenalty', 0, (v) => v >= -2 && v <= 2, 'in [-2, 2]'),
    frequencyPenalty: number(p, 'frequencyPenalty', 0, (v) => v >= -2 && v <= 2, 'in [-2, 2]'),
    seed: seed,
    maxTokens: number(p, 'maxTokens', 16, (v) => isInt(v) && v >= 1, 'an integer >= 1'),
    stop: stops as string[],
    stopTokenIds: stopIds as number[],
    ignoreEos: (p['ignoreEos'] as boolean | undefined) ?? false,
    logprobs: logprobs,
    skipSpecialTokens: (p['skipSpecialTokens'] as boolean | undefined) ?? true,
    structured: 'structured' in p ? (p['structured'] as StructuredConstraint | null) : resolveStructured(params),
    logitBias,
    allowedTokenIds: allowed,
    badWords: badWords as string[],
  };
}
