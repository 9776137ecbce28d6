// generate(): stop rules, streaming, batching, seeds and bad input, on stories260K (or a dummy model where the
// shared models are absent); the CLI's stdout / stderr contract.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { generate, type GenerationResult } from '../lib/engine/index.js';
import { type LoadedModel, loadModel } from '../lib/model/index.js';
import { expectReject, sharedModels, skipBecause } from './helpers.js';

const run = promisify(execFile);
const models = sharedModels();
const stories = models ? join(models, 'stories260K', 'stories260K.bin') : null;
const CLI = new URL('../lib/cli.js', import.meta.url).pathname;

describe('generate()', function () {
  let m: LoadedModel;
  before(async () => {
    m = await loadModel(stories ?? 'dummy:stories15M', { device: 'cpu' });
  });
  after(() => m?.model.dispose());

  it('cuts the output at a stop string and never streams any part of it', async () => {
    const [free] = await generate(m, 'Once upon a time', { temperature: 0, maxTokens: 60 });
    const stop = free!.text.slice(20, 24);
    const at = free!.text.indexOf(stop);
    let streamed = '';
    const [r] = await generate(
      m,
      'Once upon a time',
      { temperature: 0, maxTokens: 60, stop: ['zzzz-never', stop] },
      {
        onText: (_, d) => {
          streamed += d;
        },
      },
    );
    expect(r!.text).to.equal(free!.text.slice(0, at));
    expect(streamed).to.equal(r!.text);
    expect(r!.finishReason).to.equal('stop');
    expect(r!.stopReason).to.equal(stop);
  });

  it('ends at a stop token id (kept in the ids), at maxTokens, and at EOS unless ignoreEos', async () => {
    const [free] = await generate(m, 'Once upon a time', { temperature: 0, maxTokens: 30 });
    expect(free!.finishReason).to.equal('length');
    expect(free!.tokenIds).to.have.length(30);
    const stopId = free!.tokenIds[10]!;
    const first = free!.tokenIds.indexOf(stopId);
    const [r] = await generate(m, 'Once upon a time', { temperature: 0, maxTokens: 30, stopTokenIds: [stopId] });
    expect(r!.tokenIds).to.deep.equal(free!.tokenIds.slice(0, first + 1));
    expect(r!.stopReason).to.equal(stopId);
    // Make the model's greedy choice an EOS: the stop rule fires; with ignoreEos it does not.
    const eosModel = { ...m, config: { ...m.config, eosTokenIds: [free!.tokenIds[0]!] } };
    const [e] = await generate(eosModel, 'Once upon a time', { temperature: 0, maxTokens: 30 });
    expect(e!.tokenIds).to.deep.equal([free!.tokenIds[0]]);
    expect(e!.finishReason).to.equal('stop');
    expect(e!.text).to.equal('');
    const [ig] = await generate(eosModel, 'Once upon a time', { temperature: 0, maxTokens: 30, ignoreEos: true });
    expect(ig!.tokenIds).to.deep.equal(free!.tokenIds);
  });

  it('gives each prompt of a batch what it gets alone, with its own params', async () => {
    const prompts = ['Once upon a time', 'Lily and Ben', 'The cat', [1, 403]];
    const alone: GenerationResult[] = [];
    for (const p of prompts) alone.push((await generate(m, p, { temperature: 0, maxTokens: 40 }))[0]!);
    const deltas = prompts.map(() => '');
    const batch = await generate(
      m,
      prompts,
      prompts.map((_, i) => ({ temperature: 0, maxTokens: 10 + 10 * i })),
      {
        onText: (i, d) => {
          deltas[i] += d;
        },
      },
    );
    batch.forEach((r, i) => {
      expect(r.tokenIds).to.deep.equal(alone[i]!.tokenIds.slice(0, 10 + 10 * i));
      expect(deltas[i]).to.equal(r.text);
      expect(r.timings.tokens).to.have.length(r.tokenIds.length);
      expect(r.timings.firstToken).to.be.at.least(r.timings.arrival);
      expect(r.timings.finish).to.be.at.least(r.timings.firstToken);
    });
  });

  it('is reproducible with a seed', async () => {
    const p = { temperature: 1, topP: 0.95, seed: 1234, maxTokens: 40 };
    const [a] = await generate(m, 'Once upon a time', p);
    const [b] = await generate(m, 'Once upon a time', p);
    const [c] = await generate(m, 'Once upon a time', { ...p, seed: 4321 });
    expect(a!.tokenIds).to.deep.equal(b!.tokenIds);
    expect(a!.tokenIds).not.to.deep.equal(c!.tokenIds);
  });

  it('stops at the context length and returns logprobs when asked', async () => {
    const ctx = m.config.maxPositionEmbeddings;
    const [r] = await generate(m, [1, 403], { temperature: 0, maxTokens: ctx + 50, ignoreEos: true, logprobs: 2 });
    expect(r!.finishReason).to.equal('length');
    expect(r!.tokenIds).to.have.length(ctx - 2);
    expect(r!.logprobs).to.have.length(ctx - 2);
    expect(r!.logprobs![0]!.top).to.have.length(2);
    expect(r!.logprobs![0]!.token).to.equal(r!.tokenIds[0]);
  });

  it('rejects bad prompts and params with clear errors', async () => {
    const V = m.config.vocabSize;
    await expectReject(
      generate(m, [[1, V]], {}),
      RangeError,
      new RegExp(`prompts\\[0\\] must be a string or a non-empty array of token ids in \\[0, ${V}\\)`),
    );
    await expectReject(
      generate(m, [Array.from({ length: m.config.maxPositionEmbeddings }, () => 5)], {}),
      RangeError,
      /prompts\[0\]: this model's maximum context length is \d+ tokens/,
    );
    await expectReject(generate(m, ['a', 'b'], [{}]), RangeError, /params has 1 entries for 2 prompts/);
    await expectReject(generate(m, 'a', { topP: 2 }), RangeError, /topP must be in \(0, 1\]/);
    await expectReject(generate(m, [], {}), TypeError, /prompts must be/);
  });
});

describe('mini-vllm CLI', function () {
  it('generate prints the completion alone on stdout, streaming, and logs on stderr', async function () {
    if (!stories) skipBecause(this, '../shared/models/stories260K is absent');
    const { stdout, stderr } = await run(process.execPath, [
      CLI,
      'generate',
      '--model',
      stories,
      '--prompt',
      'Once upon a time',
      '-t',
      '0',
      '-n',
      '40',
    ]);
    const m = await loadModel(stories, { device: 'cpu' });
    const [r] = await generate(m, 'Once upon a time', { temperature: 0, maxTokens: 40 });
    m.model.dispose();
    expect(stdout).to.equal(r!.text);
    expect(stderr).to.match(
      /mini-vllm: .*stories260K\.bin \(0\.3M parameters, 5 layers, vocab 512\) on cpu in float32/,
    );
    expect(stderr).to.match(/40 tokens in .* tok\/s; TTFT/);
  });

  it('generate --json prints one JSON object with text, ids and timings', async () => {
    const { stdout } = await run(
      process.execPath,
      [CLI, 'generate', '--json', '-n', '8', '--seed', '3', '--prompt', 'hello', '--logprobs', '1'],
      { maxBuffer: 1 << 24 },
    );
    const out = JSON.parse(stdout) as {
      model: string;
      results: {
        text: string;
        tokenIds: number[];
        finishReason: string;
        ttftMs: number;
        e2eMs: number;
        logprobs: unknown[];
      }[];
    };
    expect(out.model).to.equal('dummy:stories15M');
    expect(out.results).to.have.length(1);
    const r = out.results[0]!;
    expect(r.tokenIds).to.have.length(8);
    expect(r.finishReason).to.equal('length');
    expect(r.text).to.be.a('string').and.not.equal('');
    expect(r.logprobs).to.have.length(8);
    expect(r.ttftMs).to.be.greaterThan(0);
    expect(r.e2eMs).to.be.at.least(r.ttftMs);
  });

  it('info prints the backends; bad flags and models fail with a message and exit code 1', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'info']);
    const info = JSON.parse(stdout) as { backends: { cpu: { threads: number } }; presets: string[] };
    expect(info.backends.cpu.threads).to.be.greaterThan(0);
    expect(info.presets).to.include('llama-3-8b');
    for (const [args, msg] of [
      [['generate', '--model', 'dummy:nope'], /unknown preset "nope"/],
      [['generate', '--model', '/no/such/model.bin'], /no such file or directory/],
      [['generate', '--temperature', 'hot'], /expected a number, got "hot"/],
      [['generate', '--device', 'tpu'], /Allowed choices are cpu, cuda/],
    ] as [string[], RegExp][]) {
      try {
        await run(process.execPath, [CLI, ...args]);
        expect.fail(`${args.join(' ')} should fail`);
      } catch (e) {
        const err = e as { code: number; stdout: string; stderr: string };
        expect(err.code, args.join(' ')).to.equal(1);
        expect(err.stdout).to.equal('');
        expect(err.stderr).to.match(msg);
      }
    }
  });
});
