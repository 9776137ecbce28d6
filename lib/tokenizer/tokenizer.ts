// What every tokenizer offers the model loaders, the generator and (later) the engine.

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export interface Tokenizer {
  /** Ids run from 0 to vocabSize - 1. */
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  /** Ids that end generation (besides those a request adds). */
  readonly eosTokenIds: readonly number[];
  /** The model's chat template (Jinja), if it has one. */
  readonly chatTemplate: string | null;
  /** Token ids of `text`; with `addSpecialTokens` (the default) the model's BOS is prepended where it uses one. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): Promise<number[]>;
  /** Text of `ids`; special tokens are skipped unless `skipSpecialTokens` is false. */
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): Promise<string>;
  /** The prompt text of a conversation, rendered with the model's chat template. */
  applyChatTemplate(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }): string;
}
