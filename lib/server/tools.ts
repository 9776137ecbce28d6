// Tool calling on /v1/chat/completions, as vLLM serves it. tool_choice "required" constrains the output to a JSON list
// of calls ({"name", "parameters"} each, the parameters by the tool's own schema); a named function constrains it to
// that function's parameters; "auto" generates freely and a parser per template family finds the calls in the text
// (--tool-call-parser: hermes for Hermes / Qwen's <tool_call> JSON, llama3_json for Llama 3.x's JSON, mistral for
// [TOOL_CALLS]); "none" leaves the text as it is.
import { randomUUID } from 'node:crypto';
import type { SamplingParams } from '../sampling/params.js';
import { checkSchema } from '../structured/schema.js';
import { ApiError } from './errors.js';

export const TOOL_CALL_PARSERS = ['hermes', 'llama3_json', 'mistral'] as const;
export type ToolCallParser = (typeof TOOL_CALL_PARSERS)[number];

export interface ToolBody {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null };
}

export type ToolChoiceBody = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

/** What a request's tools ask of the generation and of the answer. */
export interface ToolPlan {
  mode: 'none' | 'auto' | 'required' | 'named';
  /** named: the function every answer calls. */
  name: string | null;
  /** The constraint on the output (required, named), as SamplingParams' fields. */
  constraint: SamplingParams;
  parallel: boolean;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

const bad = (message: string, param: string) =>
  new ApiError(400, message, 'invalid_request_error', param, 'invalid_value');

/** A tool's parameters as a checked schema (a refused keyword is a 400 naming the tool). */
function parameters(tool: ToolBody, i: number): Record<string, unknown> | boolean {
  const p = tool.function.parameters ?? { type: 'object', properties: {} };
  try {
    return checkSchema(p, `tools[${i}].function.parameters`);
  } catch (e) {
    throw bad((e as Error).message, `tools.${i}.function.parameters`);
  }
}

/** The plan for a request's tools, or null when it has none. */
export function planTools(
  tools: ToolBody[] | null | undefined,
  choice: ToolChoiceBody | null | undefined,
  parallel: boolean | null | undefined,
  parser: ToolCallParser | null,
): ToolPlan | null {
  if (!tools || tools.length === 0) {
    if (choice !== undefined && choice !== null && choice !== 'none')
      throw bad('tool_choice needs tools', 'tool_choice');
    return null;
  }
  const names = tools.map((t) => t.function.name);
  const mode = choice === undefined || choice === null ? 'auto' : typeof choice === 'string' ? choice : 'named';
  const plan: ToolPlan = { mode, name: null, constraint: {}, parallel: parallel ?? true };
  if (mode === 'auto' && parser === null)
    throw new ApiError(
      400,
      '"auto" tool choice needs the server started with --tool-call-parser (hermes, llama3_json or mistral); ' +
        'or send tool_choice "required" or a named function',
      'invalid_request_error',
      'tool_choice',
      'unsupported',
    );
  if (mode === 'named') {
    const name = (choice as { function?: { name?: string } }).function?.name;
    const i = names.indexOf(name ?? '');
    if (i < 0)
      throw bad(`tool_choice names ${JSON.stringify(name)}, not one of the tools (${names.join(', ')})`, 'tool_choice');
    plan.name = name!;
    plan.constraint = { guidedJson: parameters(tools[i]!, i) };
  } else if (mode === 'required') {
    const calls = tools.map((t, i) => ({
      type: 'object',
      properties: { name: { enum: [t.function.name] }, parameters: parameters(t, i) },
      required: ['name', 'parameters'],
    }));
    plan.constraint = {
      guidedJson: {
        type: 'array',
        minItems: 1,
        ...(plan.parallel ? {} : { maxItems: 1 }),
        items: calls.length === 1 ? calls[0] : { anyOf: calls },
      },
    };
  }
  return plan;
}

/** A tool call's id, as vLLM writes them. */
export const callId = () => `chatcmpl-tool-${randomUUID().replace(/-/g, '')}`;

function call(name: unknown, args: unknown): ToolCall | null {
  if (typeof name !== 'string' || name === '') return null;
  const text = typeof args === 'string' ? args : JSON.stringify(args ?? {});
  return { id: callId(), type: 'function', function: { name, arguments: text } };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The answer's content and tool calls from the whole generated text. */
export function toolAnswer(
  text: string,
  plan: ToolPlan,
  parser: ToolCallParser | null,
): { content: string | null; calls: ToolCall[] } {
  let calls: ToolCall[] = [];
  let content: string | null = text;
  if (plan.mode === 'named') {
    calls = [call(plan.name, text)!];
    content = null;
  } else if (plan.mode === 'required') {
    const list = parseJson(text);
    if (Array.isArray(list))
      calls = list.flatMap((c: { name?: unknown; parameters?: unknown }) => call(c?.name, c?.parameters) ?? []);
    content = null;
  } else if (plan.mode === 'auto' && parser !== null) {
    ({ content, calls } = PARSERS[parser](text));
  }
  if (!plan.parallel) calls = calls.slice(0, 1);
  return { content, calls };
}

type Parsed = { content: string | null; calls: ToolCall[] };
const orNull = (s: string) => (s.trim() === '' ? null : s);

const PARSERS: Record<ToolCallParser, (text: string) => Parsed> = {
  /** <tool_call>{"name": ..., "arguments": {...}}</tool_call>, any number, after optional text. */
  hermes(text) {
    const at = text.indexOf('<tool_call>');
    if (at < 0) return { content: text, calls: [] };
    const calls: ToolCall[] = [];
    for (const m of text.slice(at).matchAll(/<tool_call>\s*([\s\S]*?)\s*(?:<\/tool_call>|$)/g)) {
      const v = parseJson(m[1]!) as { name?: unknown; arguments?: unknown } | undefined;
      const c = v && call(v.name, v.arguments);
      if (c) calls.push(c);
    }
    return calls.length > 0 ? { content: orNull(text.slice(0, at)), calls } : { content: text, calls: [] };
  },
  /** Llama 3.x: the whole output is {"name": ..., "parameters": {...}} (or several, joined by ";"). */
  llama3_json(text) {
    const body = text.replace(/^\s*(<\|python_tag\|>)?/, '').trim();
    if (!body.startsWith('{')) return { content: text, calls: [] };
    const calls: ToolCall[] = [];
    const parts = parseJson(body) !== undefined ? [body] : body.split(/;\s*(?=\{)/);
    for (const part of parts) {
      const v = parseJson(part) as { name?: unknown; parameters?: unknown; arguments?: unknown } | undefined;
      const c = v && call(v.name, v.parameters ?? v.arguments);
      if (!c) return { content: text, calls: [] };
      calls.push(c);
    }
    return { content: null, calls };
  },
  /** Mistral: [TOOL_CALLS] then a JSON list of {"name", "arguments"} (the marker is a special token: often gone). */
  mistral(text) {
    const at = text.indexOf('[TOOL_CALLS]');
    const before = at < 0 ? '' : text.slice(0, at);
    const body = (at < 0 ? text : text.slice(at + '[TOOL_CALLS]'.length)).trim();
    if (!body.startsWith('[')) return { content: text, calls: [] };
    const list = parseJson(body);
    if (!Array.isArray(list)) return { content: text, calls: [] };
    const calls = list.flatMap((c: { name?: unknown; arguments?: unknown }) => call(c?.name, c?.arguments) ?? []);
    return calls.length > 0 ? { content: orNull(before), calls } : { content: text, calls: [] };
  },
};

/**
 * How much of a streamed text can go out as content now: all of it until a tool call may be starting (hermes: the
 * text before a possible "<tool_call>"; llama3_json / mistral: nothing once the output starts like a call).
 */
export function streamableContent(text: string, plan: ToolPlan, parser: ToolCallParser | null): number {
  if (plan.mode !== 'auto' || parser === null) return plan.mode === 'none' ? text.length : 0;
  if (parser === 'hermes') {
    const marker = '<tool_call>';
    const at = text.indexOf(marker);
    if (at >= 0) return at;
    for (let k = Math.min(marker.length - 1, text.length); k > 0; --k)
      if (text.endsWith(marker.slice(0, k))) return text.length - k;
    return text.length;
  }
  const head = text.trimStart();
  const starts = parser === 'llama3_json' ? ['{', '<|python_tag|>'] : ['[', '[TOOL_CALLS]'];
  if (head === '' || starts.some((s) => head.startsWith(s) || s.startsWith(head))) return 0;
  return text.includes('[TOOL_CALLS]') ? text.indexOf('[TOOL_CALLS]') : text.length;
}
