// `mini-vllm generate`: a completion of each prompt, streamed to stdout (or as one JSON object), timings to stderr.
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { decodeThroughput, requestLatencies, requestRecord } from '../bench/metrics.js';
import { type GenerationResult, InferenceEngine } from '../engine/index.js';
import { parameterCount } from '../model/index.js';
import type { SamplingParams } from '../sampling/params.js';
import { addEngineOptions, collect, type EngineFlags, engineOptions, log, num, progressBar } from './flags.js';

/** The sampling flags whose value is the SamplingParams field of the same name (when given). */
const SAMPLING_FLAGS = [
  'topK',
  'topP',
  'minP',
  'repetitionPenalty',
  'presencePenalty',
  'frequencyPenalty',
  'seed',
  'logprobs',
] as const;

interface GenerateFlags extends EngineFlags, Partial<Record<(typeof SAMPLING_FLAGS)[number], number>> {
  prompt: string[];
  chat?: boolean;
  system?: string;
  temperature: number;
  maxTokens: number;
  stop: string[];
  stopTokenId: string[];
  ignoreEos?: boolean;
  json?: boolean;
  batchSize?: number;
  jsonSchema?: string;
  regex?: string;
}

/** --json-schema's value: a file holding a schema, or the schema's JSON itself. */
function schemaArg(v: string): Record<string, unknown> | boolean {
  let text = v;
  if (!/^\s*[{[]|^\s*(true|false)\s*$/.test(v)) {
    try {
      text = readFileSync(v, 'utf8');
    } catch (e) {
      throw new InvalidArgumentError(`--json-schema: neither JSON nor a readable file (${(e as Error).message})`);
    }
  }
  try {
    return JSON.parse(text) as Record<string, unknown> | boolean;
  } catch (e) {
    throw new InvalidArgumentError(`--json-schema: not valid JSON (${(e as Error).message})`);
  }
}

function samplingParams(f: GenerateFlags): SamplingParams {
  const given = SAMPLING_FLAGS.filter((k) => f[k] !== undefined).map((k) => [k, f[k]]);
  return {
    temperature: f.temperature,
    maxTokens: f.maxTokens,
    stop: f.stop,
    stopTokenIds: f.stopTokenId.map((s) => num('int')(s)),
    ...(f.ignoreEos ? { ignoreEos: true } : {}),
    ...(f.jsonSchema !== undefined ? { guidedJson: schemaArg(f.jsonSchema) } : {}),
    ...(f.regex !== undefined ? { guidedRegex: f.regex } : {}),
    ...(Object.fromEntries(given) as Partial<SamplingParams>),
  };
}

/** Per request: time to first token, time per output token after it, end to end, as vLLM defines them. */
function timing(r: GenerationResult) {
  const l = requestLatencies(requestRecord(r));
  return { ttftMs: l.ttft, tpotMs: l.tpot, e2eMs: l.e2el };
}

async function runGenerate(f: GenerateFlags): Promise<void> {
  if (f.batchSize !== undefined && f.batchSize < 1)
    throw new InvalidArgumentError(`--batch-size must be at least 1, got ${f.batchSize}`);
  const options = engineOptions(f);
  const params = samplingParams(f);
  const bar = progressBar();
  const engine = await InferenceEngine.create({ ...options, onProgress: bar.onProgress }).finally(() => bar.stop());
  try {
    const { config } = engine;
    const device = engine.options.device;
    const weightsMb = (await engine.getStats()).memory.weightsBytes / 1e6;
    log(
      `mini-vllm: ${f.model} (${(parameterCount(config) / 1e6).toFixed(1)}M parameters, ${config.numLayers} layers, ` +
        `vocab ${config.vocabSize}) on ${device} in ${engine.dtype}` +
        `${f.quantization ? ` (weights quantised to ${f.quantization.toUpperCase()})` : ''}, ` +
        `${weightsMb.toFixed(1)} MB of weights, loaded in ${engine.loadSeconds.toFixed(2)} s`,
    );
    const base = f.prompt.length > 0 ? f.prompt : ['Once upon a time'];
    const prompts = Array.from({ length: (f.batchSize ?? 1) * base.length }, (_, i) => base[i % base.length]!);
    const texts = f.chat
      ? prompts.map((p) =>
          engine.tokenizer.applyChatTemplate([
            ...(f.system ? [{ role: 'system', content: f.system }] : []),
            { role: 'user', content: p },
          ]),
        )
      : prompts;
    const streaming = !f.json && texts.length === 1;
    const start = performance.now();
    let results: GenerationResult[];
    if (streaming) {
      const stream = engine.stream(texts[0]!, params);
      for await (const d of stream) process.stdout.write(d.text);
      results = [await stream.result];
    } else {
      results = await engine.generate(texts, params);
    }
    const seconds = (performance.now() - start) / 1000;
    const stats = await engine.getStats();
    const tokens = results.reduce((s, r) => s + r.tokenIds.length, 0);
    const decodeTps = decodeThroughput(results.map(requestRecord));
    if (f.json) {
      process.stdout.write(
        `${JSON.stringify({
          model: f.model,
          device,
          dtype: engine.dtype,
          loadSeconds: engine.loadSeconds,
          batchSize: results.length,
          params,
          totalSeconds: seconds,
          outputTokens: tokens,
          outputTokensPerSecond: tokens / seconds,
          decodeTokensPerSecond: decodeTps,
          memory: stats.memory,
          prefixCache: stats.prefixCache,
          preemptions: stats.scheduler.preempted,
          results: results.map((r, i) => ({
            prompt: texts[i],
            promptTokenIds: r.promptTokenIds,
            text: r.text,
            tokenIds: r.tokenIds,
            finishReason: r.finishReason,
            stopReason: r.stopReason,
            ...(r.logprobs ? { logprobs: r.logprobs } : {}),
            ...timing(r),
          })),
        })}\n`,
      );
    } else if (!streaming) {
      for (const r of results) process.stdout.write(`${r.text}\n`);
    } else if (process.stdout.isTTY) {
      process.stdout.write('\n');
    }
    const t = timing(results[0]!);
    log(
      `mini-vllm: ${tokens} tokens in ${seconds.toFixed(2)} s (${(tokens / seconds).toFixed(1)} tok/s; TTFT ` +
        `${t.ttftMs.toFixed(1)} ms${t.tpotMs === null ? '' : `, TPOT ${t.tpotMs.toFixed(2)} ms`}); finish: ` +
        `${[...new Set(results.map((r) => r.finishReason))].join(', ')}`,
    );
  } finally {
    await engine.stop();
  }
}

export function addGenerateCommand(program: Command): void {
  const gen = program
    .command('generate')
    .description('generate a completion and stream it to stdout (logs go to stderr)')
    .option('-p, --prompt <text>', 'the prompt (repeat for a batch)', collect, [])
    .option('--chat', "wrap the prompt as a user message in the model's chat template")
    .option('--system <text>', 'with --chat: a system message')
    .option('-t, --temperature <t>', '0 = greedy', num('float'), 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', num('int'))
    .option('--top-p <p>', 'nucleus sampling mass (1 = off)', num('float'))
    .option('--min-p <p>', 'drop tokens less likely than p times the best (0 = off)', num('float'))
    .option('--repetition-penalty <r>', '> 1 discourages tokens already seen', num('float'))
    .option('--presence-penalty <p>', 'subtracted once per token present in the output', num('float'))
    .option('--frequency-penalty <f>', 'subtracted per occurrence in the output', num('float'))
    .option('-s, --seed <n>', 'sampling seed (same seed, same output)', num('int'))
    .option('-n, --max-tokens <n>', 'most tokens to generate', num('int'), 256)
    .option('--stop <text>', 'a stop string (repeatable)', collect, [])
    .option('--stop-token-id <id>', 'a stop token id (repeatable)', collect, [])
    .option('--ignore-eos', 'keep going past end-of-sequence tokens')
    .option('--logprobs <n>', 'with --json: logprobs of each token and its n best alternatives', num('int'))
    .option('--json-schema <file|json>', 'constrain the output to this JSON Schema (a file, or the JSON itself)')
    .option('--regex <re>', 'constrain the output to match this regular expression')
    .option('--json', 'print one JSON object (text, token ids, timings) instead of streaming text')
    .option('--batch-size <n>', 'send each prompt n times, all at once (a decode batch of n)', num('int'));
  addEngineOptions(gen).action(runGenerate);
}
