// What the route handlers (completions.ts, chat.ts) see of the server.
import type { InferenceEngine } from '../engine/index.js';
import type { ChoiceRunner } from './choices.js';
import type { TokenTexts } from './logprobs.js';
import type { ToolCallParser } from './tools.js';

export interface ServerContext {
  readonly engine: InferenceEngine;
  /** The name clients send as `model`. */
  readonly modelName: string;
  /** The Jinja chat template in use, or null when the model has none and none was given. */
  readonly chatTemplate: string | null;
  readonly choices: ChoiceRunner;
  readonly texts: TokenTexts;
  /** How "auto" tool choice finds calls in the text (--tool-call-parser), or null: only required / named. */
  readonly toolCallParser: ToolCallParser | null;
  /** The tokenizer's BOS and first EOS as text, for the chat template. */
  specialTokens(): Promise<{ bos: string; eos: string }>;
}
