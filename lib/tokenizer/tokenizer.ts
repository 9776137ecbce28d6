// What every tokenizer offers the model loaders, the generator and (later) the engine.

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
  /** An assistant message's calls, each {id, type, function: {name, arguments}} (arguments an object, as templates
   * read them). */
  tool_calls?: unknown[];
  /** A tool message: the call it answers. */
  tool_call_id?: string;
  name?: string;
}

/**
 * The vocabulary as a grammar engine reads it (xgrammar's TokenizerInfo): each id's token string in the tokenizer's own
 * encoding, '' for special tokens (never text), and how to read the strings.
 */
export interface GrammarVocabulary {
  tokens: string[];
  /** byte_fallback: SentencePiece ('▁' for space, <0xNN> bytes); byte_level: GPT-2's byte alphabet; raw: as is. */
  kind: 'byte_fallback' | 'byte_level' | 'raw';
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
  /** The vocabulary for structured output's grammar engine. */
  grammarVocabulary(): GrammarVocabulary;
}
