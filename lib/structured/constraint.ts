// What a request may constrain its output to, in vLLM's names: a JSON Schema, any JSON object, a regex, a choice of
// strings, or a grammar (EBNF / GBNF). Checked when the request arrives; compiled in the engine core (grammars.ts).
import { describeValue } from '../tensor.js';
import { checkSchema } from './schema.js';

/** vLLM's StructuredOutputsParams in camelCase: exactly one of json, jsonObject, regex, choice, grammar. */
export interface StructuredOutputsParams {
  /** A JSON Schema (an object, or its JSON text). */
  json?: Record<string, unknown> | boolean | string;
  /** Any JSON object (OpenAI's `response_format: {type: "json_object"}`). */
  jsonObject?: boolean;
  /** A regular expression the whole output matches (xgrammar's regex syntax: no lookaround, no backreferences). */
  regex?: string;
  /** The output is exactly one of these strings. */
  choice?: string[];
  /** An EBNF grammar (GBNF's `rule ::= ...` syntax), its start rule `root`. */
  grammar?: string;
}

/** OpenAI's response_format in camelCase. */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; jsonSchema: { name?: string; schema?: Record<string, unknown>; strict?: boolean | null } };

/** A checked constraint: `key` identifies its compiled grammar in the cache. */
export type StructuredConstraint = { key: string } & (
  | { kind: 'json'; schema: string }
  | { kind: 'json_object' }
  | { kind: 'regex'; pattern: string }
  | { kind: 'choice'; choices: string[] }
  | { kind: 'grammar'; grammar: string }
);

/** The request fields that each name a constraint (SamplingParams' own). */
export interface StructuredFields {
  structuredOutputs?: StructuredOutputsParams | null;
  responseFormat?: ResponseFormat | null;
  guidedJson?: Record<string, unknown> | boolean | string | null;
  guidedRegex?: string | null;
  guidedChoice?: string[] | null;
  guidedGrammar?: string | null;
}

function nonEmptyString(v: unknown, name: string): string {
  if (typeof v !== 'string' || v.length === 0)
    throw new TypeError(`SamplingParams: ${name} must be a non-empty string, got ${describeValue(v)}`);
  return v;
}

function jsonConstraint(schema: unknown, name: string): StructuredConstraint {
  let parsed = schema;
  if (typeof schema === 'string') {
    try {
      parsed = JSON.parse(schema);
    } catch (e) {
      throw new TypeError(`SamplingParams: ${name} is not valid JSON (${(e as Error).message})`);
    }
  }
  const text = JSON.stringify(checkSchema(parsed, `SamplingParams: ${name}`));
  return { kind: 'json', schema: text, key: `json:${text}` };
}

/** The one constraint a request names, or null; more than one is a TypeError naming them. */
export function resolveStructured(p: StructuredFields): StructuredConstraint | null {
  const found: [string, () => StructuredConstraint | null][] = [];
  /** The fields holding a schema, regex, choice or grammar: [name, value]. */
  const named: (readonly [string, unknown])[] = [];
  const so = p.structuredOutputs;
  if (so !== undefined && so !== null) {
    if (typeof so !== 'object' || Array.isArray(so))
      throw new TypeError(`SamplingParams: structuredOutputs must be an object, got ${describeValue(so)}`);
    for (const k of Object.keys(so))
      if (!['json', 'jsonObject', 'regex', 'choice', 'grammar'].includes(k))
        throw new TypeError(
          `SamplingParams: structuredOutputs.${k} is not supported (json, jsonObject, regex, choice, grammar)`,
        );
    named.push(
      ...(['json', 'regex', 'choice', 'grammar'] as const).map((k) => [`structuredOutputs.${k}`, so[k]] as const),
    );
    if (so.jsonObject)
      found.push(['structuredOutputs.jsonObject', () => ({ kind: 'json_object', key: 'json_object' })]);
  }
  const rf = p.responseFormat;
  if (rf !== undefined && rf !== null) {
    if (typeof rf !== 'object' || typeof rf.type !== 'string')
      throw new TypeError(`SamplingParams: responseFormat must be {type: ...}, got ${describeValue(rf)}`);
    if (rf.type === 'json_object') found.push(['responseFormat', () => ({ kind: 'json_object', key: 'json_object' })]);
    else if (rf.type === 'json_schema') {
      const schema = rf.jsonSchema?.schema;
      if (schema === undefined)
        throw new TypeError('SamplingParams: responseFormat json_schema needs jsonSchema.schema');
      found.push(['responseFormat', () => jsonConstraint(schema, 'responseFormat.jsonSchema.schema')]);
    } else if ((rf as { type: string }).type !== 'text')
      throw new TypeError(
        'SamplingParams: responseFormat.type must be text, json_object or json_schema, got ' +
          describeValue((rf as { type: string }).type),
      );
  }
  named.push(['guidedJson', p.guidedJson], ['guidedRegex', p.guidedRegex], ['guidedChoice', p.guidedChoice]);
  named.push(['guidedGrammar', p.guidedGrammar]);
  // each named field by the last word of its name: json, regex, choice, grammar
  for (const [name, v] of named) {
    if (v === undefined || v === null) continue;
    const kind = name.replace(/^(structuredOutputs\.|guided)/, '').toLowerCase() as keyof typeof BUILD;
    found.push([name, () => BUILD[kind](v, name)]);
  }
  if (found.length > 1)
    throw new TypeError(`SamplingParams: name one constraint, got ${found.map(([n]) => n).join(' and ')}`);
  return found.length === 0 ? null : found[0]![1]();
}

/** Each constraint kind that takes a value, from the value and the field's name (for the errors). */
const BUILD = { json: jsonConstraint, regex, choice, grammar };

function regex(v: unknown, name: string): StructuredConstraint {
  const pattern = nonEmptyString(v, name);
  return { kind: 'regex', pattern, key: `regex:${pattern}` };
}

function choice(v: unknown, name: string): StructuredConstraint {
  if (!Array.isArray(v) || v.length === 0 || !v.every((c) => typeof c === 'string' && c.length > 0))
    throw new TypeError(
      `SamplingParams: ${name} must be a non-empty array of non-empty strings, got ${describeValue(v)}`,
    );
  const choices = v as string[];
  return { kind: 'choice', choices, key: `choice:${JSON.stringify(choices)}` };
}

function grammar(v: unknown, name: string): StructuredConstraint {
  const g = nonEmptyString(v, name);
  if (!g.includes('::='))
    throw new TypeError(
      `SamplingParams: ${name} must be an EBNF / GBNF grammar (rules written name ::= ..., starting at root); ` +
        'Lark grammars are not supported',
    );
  return { kind: 'grammar', grammar: g, key: `grammar:${g}` };
}

/** A string as an EBNF literal: quotes, backslashes and control characters escaped. */
export function ebnfLiteral(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}
