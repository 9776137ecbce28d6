// A request's prompt, checked in one place for every way in (InferenceEngine, generate(), the OpenAI server): text is
// encoded by the model's tokenizer, token ids must be in the vocabulary, and the prompt must leave room for output.
import { describeValue } from '../tensor.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** Text, or token ids. */
export type Prompt = string | number[];

/**
 * The prompt's token ids: text encoded (with the tokenizer's BOS unless `addSpecialTokens` is false), or ids checked
 * to be integers in [0, vocabSize). `where` names the prompt in errors ("prompt", "prompts[2]").
 */
export async function promptTokenIds(
  prompt: Prompt,
  tokenizer: Tokenizer,
  vocabSize: number,
  where: string,
  addSpecialTokens = true,
): Promise<number[]> {
  if (typeof prompt === 'string') {
    const ids = await tokenizer.encode(prompt, { addSpecialTokens });
    if (ids.length === 0) throw new RangeError(`${where} encodes to no tokens (and the tokenizer adds no BOS)`);
    return ids;
  }
  if (
    !Array.isArray(prompt) ||
    prompt.length === 0 ||
    !prompt.every((t) => Number.isInteger(t) && t >= 0 && t < vocabSize)
  )
    throw new RangeError(
      `${where} must be a string or a non-empty array of token ids in [0, ${vocabSize}), got ${describeValue(prompt)}`,
    );
  return Array.from(prompt);
}

/** A prompt and the output asked of it do not fit the model's context. */
export class ContextLengthError extends RangeError {
  constructor(
    readonly promptTokens: number,
    readonly outputTokens: number,
    readonly maxModelLen: number,
    where: string,
  ) {
    super(
      `${where}: this model's maximum context length is ${maxModelLen} tokens. However, you requested ` +
        `${promptTokens + outputTokens} tokens ` +
        `(${promptTokens} in the prompt, ${outputTokens} for the completion). Please reduce the length of the prompt ` +
        `or completion.`,
    );
    this.name = 'RangeError';
  }
}

/** Throws a ContextLengthError unless `promptTokens` prompt tokens and `outputTokens` (at least one) fit in
 * maxModelLen. */
export function checkContextLength(
  promptTokens: number,
  outputTokens: number,
  maxModelLen: number,
  where: string,
): void {
  const output = Math.max(outputTokens, 1);
  if (promptTokens + output > maxModelLen) throw new ContextLengthError(promptTokens, output, maxModelLen, where);
}
