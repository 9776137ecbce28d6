// What structured output costs. (1) The mask per step: every row's matcher fills its bitmask on the host and
// ops.applyTokenBitmask sets the refused logits to -inf, at batch 1 and 64, over a 32000-token vocabulary (Llama 2's
// when ../shared/models has it) and a 152064-token one (Qwen 2's size, a dummy model's synthetic vocabulary), each row
// walking its own seeded path through a JSON schema. (2) The decode step with and without a constraint, in-process
// (EngineCore.step, medians of profiled steps) on a random-weight model, beside the step's own 'grammar' span.
//   node dist/lib/bench/structured.bench.js [--model dummy:stories110M] [--batches 1,64] [--steps 40] [--out dir]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineCore } from '../engine/index.js';
import { type LoadedModel, loadModel } from '../model/index.js';
import { applyTokenBitmask } from '../ops/sampling.js';
import { resolveSamplingParams } from '../sampling/params.js';
import { resolveStructured } from '../structured/constraint.js';
import { bitmaskWords, GrammarCompiler, type GrammarMatcher } from '../structured/grammars.js';
import { Tensor } from '../tensor.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import { syntheticTokenizer } from '../tokenizer/synthetic.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { benchArgs } from './args.js';
import { median } from './bandwidth.js';
import { gitCommit, machineInfo, machineLine } from './machine.js';

const USAGE = `usage: node dist/lib/bench/structured.bench.js [--model dummy:stories110M] [--batches 1,64] [--steps 40]
                                                  [--out dir]
  the cost of structured output's masks per step, and a constrained decode step against an unconstrained one`;

const { values } = benchArgs(USAGE, {
  options: {
    model: { type: 'string', default: 'dummy:stories110M' },
    batches: { type: 'string', default: '1,64' },
    steps: { type: 'string', default: '40' },
    out: { type: 'string' },
  },
});
const batches = values.batches.split(',').map(Number);
const STEPS = Number(values.steps);

/** An object a model fills in: names, numbers, an enum, a list, and a long free-text string. */
const SCHEMA = {
  type: 'object',
  properties: {
    title: { type: 'string', maxLength: 40 },
    year: { type: 'integer', minimum: 1900, maximum: 2100 },
    genre: { enum: ['fiction', 'history', 'science', 'poetry'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 12 }, maxItems: 4 },
    summary: { type: 'string' },
  },
  required: ['title', 'year', 'genre', 'tags', 'summary'],
};

/** A seeded walk: the allowed token this step takes (a 32-bit LCG over the allowed set). */
function pick(mask: Int32Array, offset: number, words: number, vocab: number, seed: { s: number }): number {
  const allowed: number[] = [];
  for (let w = 0; w < words; ++w) {
    const m = mask[offset + w]!;
    if (m === 0) continue;
    for (let b = 0; b < 32 && w * 32 + b < vocab; ++b) if ((m >>> b) & 1) allowed.push(w * 32 + b);
  }
  seed.s = (Math.imul(seed.s, 1664525) + 1013904223) >>> 0;
  return allowed[seed.s % allowed.length]!;
}

async function maskCost(name: string, tokenizer: Tokenizer, vocab: number, batch: number) {
  const compiler = new GrammarCompiler(tokenizer, vocab, tokenizer.eosTokenIds);
  const c = resolveStructured({ guidedJson: SCHEMA })!;
  let t0 = performance.now();
  await compiler.prepareVocabulary();
  const vocabularyMs = performance.now() - t0;
  t0 = performance.now();
  await compiler.compile(c);
  const compileMs = performance.now() - t0;
  const matchers: GrammarMatcher[] = [];
  for (let i = 0; i < batch; ++i) matchers.push(await compiler.matcher(c));
  const words = bitmaskWords(vocab);
  const host = new Int32Array(batch * words);
  const logits = Tensor.zeros([batch, vocab]);
  const bitmask = Tensor.empty([batch, words], { dtype: 'int32' });
  const rows = Tensor.fromArray(
    Array.from({ length: batch }, (_, i) => i),
    [batch],
    { dtype: 'int32' },
  );
  const seeds = matchers.map((_, i) => ({ s: i + 1 }));
  const fill: number[] = [];
  const apply: number[] = [];
  const accept: number[] = [];
  for (let step = 0; step < STEPS; ++step) {
    let t = performance.now();
    matchers.forEach((m, i) => m.fillBitmask(host, i * words));
    fill.push(performance.now() - t);
    t = performance.now();
    bitmask.write(host);
    applyTokenBitmask(logits, bitmask, rows);
    apply.push(performance.now() - t);
    const next = matchers.map((_, i) => pick(host, i * words, words, vocab, seeds[i]!));
    t = performance.now();
    matchers.forEach((m, i) => {
      if (!m.accept(next[i]!)) throw new Error(`the grammar refused the token its own mask allowed (row ${i})`);
    });
    accept.push(performance.now() - t);
  }
  for (const m of matchers) m.dispose();
  for (const t of [logits, bitmask, rows]) t.dispose();
  return {
    vocabulary: name,
    vocab,
    batch,
    steps: STEPS,
    vocabularyMs,
    compileMs,
    fillMs: median(fill),
    applyMs: median(apply),
    acceptMs: median(accept),
    totalMs: median(fill.map((f, i) => f + apply[i]! + accept[i]!)),
  };
}

/**
 * EngineCore.step with every row constrained (or none), medians of profiled decode steps after a warm-up. Rows still
 * running at the end are counted (a constrained row whose object closed leaves the batch).
 */
async function decodeStep(m: LoadedModel, batch: number, constrained: boolean) {
  const core = EngineCore.fromLoaded(m, { maxModelLen: 512, maxNumSeqs: Math.max(batch, 1) });
  try {
    const params = resolveSamplingParams({
      temperature: 1,
      seed: 7,
      maxTokens: 400,
      ignoreEos: true,
      ...(constrained ? { guidedJson: SCHEMA } : {}),
    });
    for (let i = 0; i < batch; ++i) {
      const req = { requestId: String(i), promptTokenIds: [1, 400, 500, 600], params: { ...params, seed: 7 + i } };
      core.add(req, constrained ? await core.prepare(req) : undefined);
    }
    for (let i = 0; i < 8; ++i) core.step();
    core.startProfile(STEPS);
    for (let i = 0; i < STEPS; ++i) core.step();
    const spans = core.stopProfile().traceEvents.filter((e) => e.ph === 'X' && e.tid === 1);
    const of = (name: string) => spans.filter((e) => e.name === name).map((e) => e.dur! / 1000);
    const grammar = of('grammar');
    return {
      batch,
      constrained,
      stepMs: median(of('step')),
      forwardMs: median(of('forward')),
      grammarMs: grammar.length > 0 ? median(grammar) : 0,
      sampleMs: median(of('sample')),
      runningAtEnd: [...core.scheduler.sequences()].length,
    };
  } finally {
    core.dispose();
  }
}

const llama2 = join(process.cwd(), '..', 'shared', 'models', 'llama2-tokenizer', 'tokenizer.bin');
const vocabularies: [string, Tokenizer, number][] = [
  existsSync(llama2)
    ? ['Llama 2 (32000)', SentencePieceTokenizer.fromLlama2c(llama2, 32000), 32000]
    : ['synthetic (32000)', syntheticTokenizer(32000, { bosTokenId: 1, eosTokenIds: [2] }), 32000],
  ['synthetic (152064)', syntheticTokenizer(152064, { bosTokenId: null, eosTokenIds: [151643] }), 152064],
];
const masks = [];
for (const [name, tok, vocab] of vocabularies)
  for (const batch of batches) masks.push(await maskCost(name, tok, vocab, batch));
// unconstrained and constrained runs alternate, ROUNDS of each: the VM's speed drifts between runs
const ROUNDS = 3;
const decode = [];
const model = await loadModel(values.model, { device: 'cpu' });
for (const batch of batches) {
  const free = [];
  const held = [];
  for (let r = 0; r < ROUNDS; ++r) {
    free.push(await decodeStep(model, batch, false));
    held.push(await decodeStep(model, batch, true));
  }
  const freeMs = median(free.map((x) => x.stepMs));
  const heldMs = median(held.map((x) => x.stepMs));
  const grammarMs = median(held.map((x) => x.grammarMs));
  const forward = [median(free.map((x) => x.forwardMs)), median(held.map((x) => x.forwardMs))];
  const sample = [median(free.map((x) => x.sampleMs)), median(held.map((x) => x.sampleMs))];
  const running = Math.min(...held.map((x) => x.runningAtEnd));
  decode.push({
    batch,
    free,
    constrained: held,
    freeMs,
    heldMs,
    grammarMs,
    forward,
    sample,
    running,
    ratio: heldMs / freeMs,
  });
}
model.model.dispose();
const machine = machineInfo();
const commit = gitCommit();
const lines = [
  `mini-vllm structured output benchmark, commit ${commit ?? 'unknown'}, ${new Date().toISOString()}`,
  `machine: ${machineLine(machine)}`,
  `schema: ${JSON.stringify(SCHEMA)}`,
  '',
  `the mask per step (medians over ${STEPS} steps; each row its own seeded walk through the schema)`,
  '| vocabulary | batch | vocabulary setup ms | schema compile ms | fill masks ms | upload + applyTokenBitmask ms ' +
    '| accept ms | total ms |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...masks.map(
    (r) =>
      `| ${r.vocabulary} | ${r.batch} | ${r.vocabularyMs.toFixed(0)} | ${r.compileMs.toFixed(0)} ` +
      `| ${r.fillMs.toFixed(3)} | ${r.applyMs.toFixed(3)} ` +
      `| ${r.acceptMs.toFixed(3)} | ${r.totalMs.toFixed(3)} |`,
  ),
  '',
  `decode step, ${values.model} on the CPU, in-process EngineCore.step: the median over ${ROUNDS} alternating runs ` +
    `of each run's median over ${STEPS} profiled steps (every row sampled at temperature 1, its own seed)`,
  '| batch | step ms: unconstrained | constrained | forward ms: unc. | con. | sample ms: unc. | con. | grammar ms ' +
    '| constrained rows running at the end | constrained / unconstrained |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...decode.map(
    (d) =>
      `| ${d.batch} | ${d.freeMs.toFixed(2)} | ${d.heldMs.toFixed(2)} | ${d.forward[0]!.toFixed(2)} | ` +
      `${d.forward[1]!.toFixed(2)} | ${d.sample[0]!.toFixed(3)} | ${d.sample[1]!.toFixed(3)} | ` +
      `${d.grammarMs.toFixed(3)} | ${d.running} of ${d.batch} | ${d.ratio.toFixed(3)} |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
if (values.out) {
  mkdirSync(values.out, { recursive: true });
  writeFileSync(
    join(values.out, 'structured.json'),
    `${JSON.stringify({ commit, machine, schema: SCHEMA, masks, decode }, null, 2)}\n`,
  );
  writeFileSync(join(values.out, 'structured.md'), `${lines.join('\n')}\n`);
}
