// JSON schemas of the OpenAI request bodies the server accepts (checked by fastify's Ajv before a handler runs).
// Types are strict (no coercion: "5" is not a number); unknown fields are accepted and ignored, as OpenAI and vLLM do.
import type { ToolBody, ToolChoiceBody } from './tools.js';

/** The schema, or null (as OpenAI's clients send for "not set"). */
const nullable = <T extends { type: string }>(schema: T) => ({ ...schema, type: [schema.type, 'null'] });

/** Sampling fields shared by both routes, with OpenAI's ranges and vLLM's extensions (top_k, min_p, ...). */
const sampling = {
  model: { type: 'string' },
  temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
  top_p: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
  top_k: nullable({ type: 'integer', minimum: -1 }),
  min_p: nullable({ type: 'number', minimum: 0, maximum: 1 }),
  n: nullable({ type: 'integer', minimum: 1, maximum: 128 }),
  max_tokens: nullable({ type: 'integer', minimum: 1 }),
  stop: {
    anyOf: [
      { type: 'string' },
      { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 16 },
      { type: 'null' },
    ],
  },
  stop_token_ids: nullable({ type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: 64 }),
  stream: nullable({ type: 'boolean' }),
  stream_options: nullable({ type: 'object', properties: { include_usage: nullable({ type: 'boolean' }) } }),
  seed: nullable({ type: 'integer', minimum: -(2 ** 53), maximum: 2 ** 53 }),
  presence_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
  frequency_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
  repetition_penalty: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 10 }),
  ignore_eos: nullable({ type: 'boolean' }),
  user: nullable({ type: 'string' }),
  // structured output (checked in full by the engine: a bad schema, regex or grammar is a 400 saying where)
  response_format: nullable({ type: 'object', required: ['type'], properties: { type: { type: 'string' } } }),
  structured_outputs: nullable({ type: 'object' }),
  guided_json: { anyOf: [{ type: 'object' }, { type: 'boolean' }, { type: 'string' }, { type: 'null' }] },
  guided_regex: nullable({ type: 'string' }),
  guided_choice: nullable({ type: 'array', items: { type: 'string' } }),
  guided_grammar: nullable({ type: 'string' }),
  logit_bias: nullable({ type: 'object', additionalProperties: { type: 'number', minimum: -100, maximum: 100 } }),
  allowed_token_ids: nullable({ type: 'array', items: { type: 'integer', minimum: 0 } }),
  bad_words: nullable({ type: 'array', items: { type: 'string' } }),
} as const;

const tokenIds = { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 } } as const;

export const completionSchema = {
  type: 'object',
  required: ['prompt'],
  properties: {
    ...sampling,
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', minItems: 1, items: { type: 'string' } },
        tokenIds,
        { type: 'array', minItems: 1, items: tokenIds },
      ],
    },
    logprobs: nullable({ type: 'integer', minimum: 0, maximum: 20 }),
    echo: nullable({ type: 'boolean' }),
    best_of: nullable({ type: 'integer', minimum: 1 }),
    suffix: nullable({ type: 'string' }),
  },
} as const;

const contentPart = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string' }, text: { type: 'string' } },
} as const;

/** A function the model may call: its name as OpenAI allows it, its parameters a JSON Schema. */
const tool = {
  type: 'object',
  required: ['type', 'function'],
  properties: {
    type: { const: 'function' },
    function: {
      type: 'object',
      required: ['name'],
      properties: {
        name: { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,64}$' },
        description: { type: 'string' },
        parameters: { type: 'object' },
        strict: nullable({ type: 'boolean' }),
      },
    },
  },
} as const;

/** A call in an assistant message of the history. */
const toolCall = {
  type: 'object',
  required: ['function'],
  properties: {
    id: { type: 'string' },
    type: { const: 'function' },
    function: {
      type: 'object',
      required: ['name', 'arguments'],
      properties: { name: { type: 'string' }, arguments: { type: 'string' } },
    },
  },
} as const;

export const chatSchema = {
  type: 'object',
  required: ['messages'],
  properties: {
    ...sampling,
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
          content: { anyOf: [{ type: 'string' }, { type: 'array', items: contentPart }, { type: 'null' }] },
          name: { type: 'string' },
          tool_calls: nullable({ type: 'array', items: toolCall }),
          tool_call_id: nullable({ type: 'string' }),
        },
      },
    },
    tools: nullable({ type: 'array', items: tool, maxItems: 128 }),
    tool_choice: {
      anyOf: [
        { type: 'string', enum: ['none', 'auto', 'required'] },
        {
          type: 'object',
          required: ['type', 'function'],
          properties: {
            type: { const: 'function' },
            function: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
          },
        },
        { type: 'null' },
      ],
    },
    parallel_tool_calls: nullable({ type: 'boolean' }),
    max_completion_tokens: nullable({ type: 'integer', minimum: 1 }),
    logprobs: nullable({ type: 'boolean' }),
    top_logprobs: nullable({ type: 'integer', minimum: 0, maximum: 20 }),
  },
} as const;

export interface SamplingBody {
  model?: string;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  n?: number | null;
  max_tokens?: number | null;
  stop?: string | string[] | null;
  stop_token_ids?: number[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  ignore_eos?: boolean | null;
  response_format?: {
    type: string;
    json_schema?: { name?: string; schema?: Record<string, unknown>; strict?: boolean | null };
  } | null;
  structured_outputs?: Record<string, unknown> | null;
  guided_json?: Record<string, unknown> | boolean | string | null;
  guided_regex?: string | null;
  guided_choice?: string[] | null;
  guided_grammar?: string | null;
  logit_bias?: Record<string, number> | null;
  allowed_token_ids?: number[] | null;
  bad_words?: string[] | null;
}

export interface CompletionBody extends SamplingBody {
  prompt: string | string[] | number[] | number[][];
  logprobs?: number | null;
  echo?: boolean | null;
  best_of?: number | null;
  suffix?: string | null;
}

export interface ChatMessageBody {
  role: string;
  content?: string | Array<{ type: string; text?: string }> | null;
  name?: string;
  tool_calls?: { id?: string; type?: 'function'; function: { name: string; arguments: string } }[] | null;
  tool_call_id?: string | null;
}

export interface ChatBody extends SamplingBody {
  messages: ChatMessageBody[];
  tools?: ToolBody[] | null;
  tool_choice?: ToolChoiceBody | null;
  parallel_tool_calls?: boolean | null;
  max_completion_tokens?: number | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
}
