// The JSON-Schema-Test-Suite (npm json-schema-test-suite, draft 4) as structured output's workload: which schemas a
// request may name (the rest are refused, with the reason), and whether what a model generates under each validates.
// The outputs are checked by Ajv (draft-07 rules, which agree with draft 4 on every keyword structured output takes;
// ajv-formats for the formats). A random-weight model tests the mask, not the model.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import AjvModule from 'ajv';
import formatsModule from 'ajv-formats';
import { generate } from '../lib/engine/index.js';
import type { LoadedModel } from '../lib/model/index.js';
import { resolveStructured } from '../lib/structured/constraint.js';
import { checkConstraint } from '../lib/structured/grammars.js';

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

/** Every schema accepted or refused; each accepted one generated `seeds.length` times (temperature 1), validated. */
export async function runSchemaSuite(m: LoadedModel, seeds: number[], maxTokens: number): Promise<SuiteResult> {
  const all = suiteSchemas();
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
  // CommonJS packages: their default export is the module object under NodeNext
  const Ajv = AjvModule.default;
  const ajv = new Ajv({ strict: false, validateSchema: false });
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
