// A request body as the engine takes it: the model it names, the sampling params, and its choices (n per prompt, each
// prompt checked against the context), and the usage a response reports.
import type { GenerationResult } from '../engine/index.js';
import { checkContextLength, ContextLengthError } from '../engine/prompt.js';
import type { SamplingParams } from '../sampling/params.js';
import { ApiError } from './errors.js';
import type { SamplingBody } from './schemas.js';

/** One engine request of an HTTP request: prompt p's j-th choice is choice p * n + j. */
export interface Choice {
  index: number;
  /** The first of its prompt's n choices (which counts the prompt's tokens in the metrics). */
  first: boolean;
  ids: number[];
  params: SamplingParams;
}

export function checkModel(body: SamplingBody, modelName: string): void {
  if (body.model !== undefined && body.model !== modelName)
    throw new ApiError(
      400,
      `The model \`${body.model}\` does not exist; this server serves \`${modelName}\``,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
}

/** OpenAI's and vLLM's sampling fields as SamplingParams (top_k -1 means off, as in vLLM). */
export function samplingParams(body: SamplingBody, maxTokens: number, logprobs: number | null): SamplingParams {
  const stop =
    body.stop === undefined || body.stop === null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const p: SamplingParams = { maxTokens, stop, temperature: body.temperature ?? 1 };
  if (body.top_p !== undefined && body.top_p !== null) p.topP = body.top_p;
  if (body.top_k !== undefined && body.top_k !== null) p.topK = body.top_k < 0 ? 0 : body.top_k;
  if (body.min_p !== undefined && body.min_p !== null) p.minP = body.min_p;
  if (body.presence_penalty !== undefined && body.presence_penalty !== null) p.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty !== undefined && body.frequency_penalty !== null)
    p.frequencyPenalty = body.frequency_penalty;
  if (body.repetition_penalty !== undefined && body.repetition_penalty !== null)
    p.repetitionPenalty = body.repetition_penalty;
  if (body.stop_token_ids) p.stopTokenIds = body.stop_token_ids;
  if (body.ignore_eos) p.ignoreEos = true;
  if (body.seed !== undefined && body.seed !== null) p.seed = body.seed;
  if (logprobs !== null) p.logprobs = logprobs;
  Object.assign(p, structuredParams(body));
  if (body.logit_bias) p.logitBias = body.logit_bias;
  if (body.allowed_token_ids) p.allowedTokenIds = body.allowed_token_ids;
  if (body.bad_words) p.badWords = body.bad_words;
  return p;
}

/** OpenAI's response_format and vLLM's structured_outputs / guided_* fields, as SamplingParams' (camelCase). */
function structuredParams(body: SamplingBody): SamplingParams {
  const p: SamplingParams = {};
  const rf = body.response_format;
  if (rf) {
    if (rf.type === 'json_schema') {
      if (!rf.json_schema || typeof rf.json_schema.schema !== 'object')
        throw new ApiError(
          400,
          'response_format json_schema needs json_schema.schema (an object)',
          'invalid_request_error',
          'response_format.json_schema.schema',
          'invalid_value',
        );
      p.responseFormat = { type: 'json_schema', jsonSchema: rf.json_schema };
    } else p.responseFormat = rf as SamplingParams['responseFormat'];
  }
  const so = body.structured_outputs;
  if (so) {
    const { json_object: jsonObject, ...rest } = so;
    p.structuredOutputs = {
      ...rest,
      ...(jsonObject === undefined ? {} : { jsonObject }),
    } as SamplingParams['structuredOutputs'];
  }
  if (body.guided_json !== undefined && body.guided_json !== null) p.guidedJson = body.guided_json;
  if (body.guided_regex) p.guidedRegex = body.guided_regex;
  if (body.guided_choice) p.guidedChoice = body.guided_choice;
  if (body.guided_grammar) p.guidedGrammar = body.guided_grammar;
  return p;
}

/**
 * The choices of a request: n per prompt, each prompt checked against the context (maxTokens null: the rest of the
 * context, as chat's default). Choice j gets seed + j.
 */
export function choicesOf(
  prompts: number[][],
  body: SamplingBody,
  maxTokens: number | null,
  logprobs: number | null,
  maxModelLen: number,
): Choice[] {
  const n = body.n ?? 1;
  const out: Choice[] = [];
  prompts.forEach((ids, promptIndex) => {
    const want = maxTokens ?? maxModelLen - ids.length;
    try {
      checkContextLength(ids.length, want, maxModelLen, 'prompt');
    } catch (e) {
      if (!(e instanceof ContextLengthError)) throw e;
      throw new ApiError(
        400,
        e.message,
        'invalid_request_error',
        maxTokens === null ? 'messages' : 'max_tokens',
        'context_length_exceeded',
      );
    }
    const base = samplingParams(body, want, logprobs);
    for (let j = 0; j < n; ++j) {
      const params = typeof base.seed !== 'number' || j === 0 ? base : { ...base, seed: base.seed + j };
      out.push({ index: promptIndex * n + j, first: j === 0, ids, params });
    }
  });
  return out;
}

export function usage(prompts: number[][], results: GenerationResult[]) {
  const prompt = prompts.reduce((s, p) => s + p.length, 0);
  const completion = results.reduce((s, r) => s + (r?.tokenIds.length ?? 0), 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
