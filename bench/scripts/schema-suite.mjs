#!/usr/bin/env node
// Structured output over the JSON-Schema-Test-Suite (npm json-schema-test-suite, draft 4): how many schemas a request
// may name, and of the runs on each accepted one (temperature 1, one seed each), how many finished within the token
// budget and how many of those validate (Ajv). A random-weight model tests the mask, not the model; stories260K (a
// trained one, from ../shared/models) runs beside it where present. test/structured.test.ts runs a smaller version.
//
//   node bench/scripts/schema-suite.mjs OUT_DIR [--seeds 8] [--max-tokens 128]   (after npm run build)
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gitCommit, machineInfo, machineLine } from '../../dist/lib/bench/machine.js';
import { loadModel } from '../../dist/lib/model/index.js';
import { scriptArgs } from './args.mjs';
import { practiceSchemas, runSchemaSuite, suiteSchemas } from '../../dist/test/schema-suite.js';

const USAGE = `usage: node bench/scripts/schema-suite.mjs OUT_DIR [--seeds 8] [--max-tokens 128]
  structured output over the JSON-Schema-Test-Suite (draft 4) and a practice set: accepted, finished, valid`;
const { values, positionals } = scriptArgs(USAGE, {
  allowPositionals: true,
  options: { seeds: { type: 'string', default: '8' }, 'max-tokens': { type: 'string', default: '128' } },
});
const out = positionals[0];
if (!out) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i + 1);
const maxTokens = Number(values['max-tokens']);
const stories = join(process.cwd(), '..', 'shared', 'models', 'stories260K', 'stories260K.bin');
const models = ['dummy:stories15M', ...(existsSync(stories) ? [stories] : [])];
const rows = [];
for (const model of models) {
  const m = await loadModel(model, { device: 'cpu' });
  const sets = [
    ['JSON-Schema-Test-Suite draft 4', suiteSchemas()],
    ['in practice (test/schema-suite.ts)', practiceSchemas()],
  ];
  for (const [set, schemas] of sets) {
    const t = performance.now();
    const r = await runSchemaSuite(m, seeds, maxTokens, schemas);
    const name = model.includes('stories260K') ? 'stories260K' : model;
    rows.push({ model: name, set, seconds: (performance.now() - t) / 1e3, ...r });
  }
  m.model.dispose();
}
const lines = [
  'mini-vllm structured output over the JSON-Schema-Test-Suite (draft 4) and schemas as given in practice, ' +
    `commit ${gitCommit() ?? 'unknown'}, ` +
    new Date().toISOString(),
  `machine: ${machineLine(machineInfo())}`,
  `each accepted schema generated ${seeds.length} times (temperature 1, seeds 1..${seeds.length}), at most ` +
    `${maxTokens} tokens; finished = ended by its grammar (not by the token budget); valid = JSON.parse + Ajv`,
  '',
  '| model | schemas | count | accepted | runs | finished | valid | invalid | seconds |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.model} | ${r.set} | ${r.schemas} | ${r.accepted} | ${r.runs} | ${r.finished} | ${r.valid} ` +
      `| ${r.invalid.length} ` +
      `| ${r.seconds.toFixed(1)} |`,
  ),
  '',
  'refused, by reason (the message, cut at 80 characters): count',
  ...rows
    .filter((r) => r.model === rows[0].model)
    .flatMap((r) => [`${r.set}:`, ...Object.entries(r.refused).map(([why, n]) => `- ${why}: ${n}`)]),
];
process.stdout.write(`${lines.join('\n')}\n`);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'schema-suite.json'), `${JSON.stringify(rows, null, 2)}\n`);
writeFileSync(join(out, 'schema-suite.md'), `${lines.join('\n')}\n`);
