// The JSON-Schema-Test-Suite (npm json-schema-test-suite, draft 4) as structured output's workload: which schemas a
// request may name (the rest are refused, with the reason), and whether what a model generates under each validates.
// The outputs are checked by Ajv (draft-07 rules, which agree with draft 4 on every keyword structured output takes;
// ajv-formats for the formats). A random-weight model tests the mask, not the model.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import AjvModule from 'ajv';
import Ajv2020Module from 'ajv/dist/2020.js';
import formatsModule from 'ajv-formats';
import { generate } from '../lib/engine/index.js';
import type { LoadedModel } from '../lib/model/index.js';
import { resolveStructured } from '../lib/structured/constraint.js';
import { checkConstraint } from '../lib/structured/grammars.js';
import { FORMATS } from '../lib/structured/schema.js';

export interface SuiteSchema {
  file: string;
  description: string;
  schema: unknown;
}

export interface SuiteResult {
  schemas: number;
  accepted: number;
  /** Why each refused schema was refused: the reason (its first 80 characters) and how many. */
  refused: Record<string, number>;
  runs: number;
  /** Runs that ended because the grammar ended (not at maxTokens). */
  finished: number;
  valid: number;
  /** Finished runs whose output did not validate: schema, output, Ajv's errors. */
  invalid: { file: string; description: string; text: string; errors: string }[];
}

export function suiteSchemas(): SuiteSchema[] {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('json-schema-test-suite/package.json')), 'tests', 'draft4');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .flatMap((file) =>
      (JSON.parse(readFileSync(join(dir, file), 'utf8')) as { description: string; schema: unknown }[]).map((g) => ({
        file,
        description: g.description,
        schema: g.schema,
      })),
    );
}

/**
 * Schemas of the kind models are given in practice, one keyword family each, beside the suite's (which has no formats,
 * prefixItems or $defs): what a demanding user's request looks like.
 */
export function practiceSchemas(): SuiteSchema[] {
  const person = {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 20 },
      age: { type: 'integer', minimum: 0, maximum: 130 },
      email: { type: 'string', format: 'email' },
    },
    required: ['name', 'age', 'email'],
  };
  const list: [string, unknown][] = [
    ['an object with bounded fields and an email', person],
    [
      `formats: ${FORMATS.filter((f) => f !== 'email').join(', ')}`,
      {
        type: 'object',
        properties: Object.fromEntries(
          FORMATS.filter((f) => f !== 'email').map((f) => [f, { type: 'string', format: f }]),
        ),
        required: FORMATS.filter((f) => f !== 'email'),
      },
    ],
    ['a pattern', { type: 'string', pattern: '^[A-Z]{3}-[0-9]{4}$' }],
    [
      'numbers: exclusive bounds, negative',
      { type: 'array', items: { type: 'number', exclusiveMinimum: -50, maximum: -3 }, minItems: 1, maxItems: 4 },
    ],
    [
      'prefixItems then items false',
      { type: 'array', prefixItems: [{ type: 'boolean' }, { enum: ['x', 'y'] }], items: false },
    ],
    [
      'enum and const of mixed types',
      {
        type: 'object',
        properties: { a: { enum: [1, 'two', null, true] }, b: { const: { k: [1, 2] } } },
        required: ['a', 'b'],
      },
    ],
    [
      'anyOf objects',
      { anyOf: [person, { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] }] },
    ],
    ['oneOf with disjoint types', { oneOf: [{ type: 'string', maxLength: 5 }, { type: 'integer' }, { type: 'null' }] }],
    [
      'allOf of two objects',
      {
        allOf: [
          person,
          { properties: { tags: { type: 'array', items: { type: 'string' }, maxItems: 3 } }, required: ['tags'] },
        ],
      },
    ],
    [
      '$defs and a recursive $ref',
      {
        $defs: {
          node: {
            type: 'object',
            properties: {
              v: { type: 'integer' },
              kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 },
            },
            required: ['v'],
          },
        },
        $ref: '#/$defs/node',
      },
    ],
    [
      'additionalProperties as a schema',
      {
        type: 'object',
        properties: { a: { type: 'integer' } },
        additionalProperties: { type: 'string', maxLength: 4 },
      },
    ],
    [
      'a tool call list (tool_choice "required")',
      {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          properties: { name: { enum: ['get_weather'] }, parameters: person },
          required: ['name', 'parameters'],
        },
      },
    ],
  ];
  return list.map(([description, schema]) => ({ file: 'practice', description, schema }));
}

/** Every schema accepted or refused; each accepted one generated `seeds.length` times (temperature 1), validated. */
export async function runSchemaSuite(
  m: LoadedModel,
  seeds: number[],
  maxTokens: number,
  all: SuiteSchema[] = suiteSchemas(),
): Promise<SuiteResult> {
  const accepted: SuiteSchema[] = [];
  const refused: Record<string, number> = {};
  for (const s of all) {
    try {
      await checkConstraint(resolveStructured({ guidedJson: s.schema as Record<string, unknown> })!);
      accepted.push(s);
    } catch (e) {
      const why = (e as Error).message.replace(/^SamplingParams: guidedJson: /, '').slice(0, 80);
      refused[why] = (refused[why] ?? 0) + 1;
    }
  }
  const params = accepted.flatMap((s) =>
    seeds.map((seed) => ({ temperature: 1, seed, maxTokens, guidedJson: s.schema as Record<string, unknown> })),
  );
  const results = await generate(
    m,
    params.map(() => 'Once upon a time'),
    params,
  );
  // CommonJS packages: their default export is the module object under NodeNext. Draft 4's schemas by draft-07 rules
  // (the same for every keyword taken), the others by 2020-12's (prefixItems, $defs).
  const draft4 = all.every((s) => s.file !== 'practice');
  const ajv = draft4
    ? new AjvModule.default({ strict: false, validateSchema: false })
    : new Ajv2020Module.default({ strict: false, validateSchema: false });
  formatsModule.default(ajv);
  let finished = 0;
  let valid = 0;
  const invalid: SuiteResult['invalid'] = [];
  results.forEach((r, i) => {
    const s = accepted[Math.floor(i / seeds.length)]!;
    if (r.finishReason !== 'stop') return;
    ++finished;
    let ok = false;
    try {
      ok = ajv.validate<unknown>(s.schema as object, JSON.parse(r.text));
    } catch {
      ok = false;
    }
    if (ok) ++valid;
    else invalid.push({ file: s.file, description: s.description, text: r.text, errors: JSON.stringify(ajv.errors) });
  });
  return { schemas: all.length, accepted: accepted.length, refused, runs: results.length, finished, valid, invalid };
}
