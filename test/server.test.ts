// The OpenAI-compatible server, driven by the official `openai` client (and plain fetch for what a client would never
// send): completions and chat, streamed and not, against InferenceEngine's own output; load, disconnects, errors,
// metrics, the CLI's serve and graceful shutdown. stories260K where ../shared/models is present, else a dummy model.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import OpenAI from 'openai';
import { InferenceEngine } from '../lib/engine/index.js';
import { memoryStats } from '../lib/runtime.js';
import { OpenAIServer, serve } from '../lib/server/index.js';
import { prng, sharedModels } from './helpers.js';

const models = sharedModels();
const MODEL = models ? join(models, 'stories260K', 'stories260K.bin') : 'dummy:stories15M';
// stories260K's context is 512 tokens, dummy:stories15M's 256; the long streams take what a short prompt leaves
const MAX_LEN = models ? 512 : 256;
const LONG = MAX_LEN - 112;
const CLI = new URL('../lib/cli.js', import.meta.url).pathname;
const TEMPLATE =
  "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ " +
  "'assistant:' }}{% endif %}";
const PROMPTS = ['Once upon a time', 'Lily and Ben', 'The cat sat', 'One day, a little girl', 'Tom had a big red ball'];

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: r.status, json, headers: r.headers };
}

function expectError(
  res: { status: number; json: Record<string, unknown> },
  status: number,
  param?: string | null,
  code?: string,
): void {
  expect(res.status, JSON.stringify(res.json)).to.equal(status);
  const e = res.json.error as { message: unknown; type: unknown; param: unknown; code: unknown };
  expect(e, 'OpenAI error shape').to.be.an('object');
  expect(e.message).to.be.a('string').and.not.equal('');
  expect(e.type).to.be.a('string');
  if (param !== undefined) expect(e.param).to.equal(param);
  if (code !== undefined) expect(e.code).to.equal(code);
}

/** A strict reading of the Prometheus text format (0.0.4): every line a comment, blank, or `name{labels} value`. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const label = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
  const sample = new RegExp(`^(${name})(\\{(?:${label})(?:,${label})*,?\\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)( -?[0-9]+)?$`);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${name}) .*$`).exec(line))) continue;
    if ((m = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      expect(types.has(m[1]!), `one TYPE line for ${m[1]}`).to.equal(false);
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = sample.exec(line);
    expect(m, `a Prometheus sample line: ${line}`).to.not.equal(null);
    const base = m![1]!.replace(/_(bucket|sum|count)$/, '');
    expect(types.has(m![1]!) || types.has(base), `${m![1]} has a TYPE`).to.equal(true);
    samples.set(`${m![1]}${m![2] ?? ''}`, Number(m![3]!.replace('Inf', 'Infinity')));
  }
  return samples;
}

const sum = (m: Map<string, number>, prefix: string) =>
  [...m].filter(([k]) => k.startsWith(prefix)).reduce((s, [, v]) => s + v, 0);

describe(`OpenAI server (${models ? 'stories260K' : 'dummy:stories15M: ../shared/models is absent'})`, function () {
  let engine: InferenceEngine;
  let server: OpenAIServer;
  let base: string;
  let client: OpenAI;
  let modelName: string;
  const expected = new Map<string, string>();
  /** A greedy 24-token completion of `prompt`: what `expected` holds for it. */
  const greedy = (prompt: string) => ({ model: modelName, prompt, max_tokens: 24, temperature: 0 });

  before(async () => {
    engine = await InferenceEngine.create({ model: MODEL, device: 'cpu', maxModelLen: MAX_LEN, seed: 0 });
    server = new OpenAIServer(engine, { chatTemplate: TEMPLATE });
    modelName = server.modelName;
    base = (await server.listen('127.0.0.1', 0)).url;
    client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
    const rs = await engine.generate(PROMPTS, { temperature: 0, maxTokens: 24 });
    rs.forEach((r, i) => expected.set(PROMPTS[i]!, r.text));
  });
  after(async () => {
    await server?.close();
    await engine?.stop();
  });

  it('lists the model and answers /health', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).to.deep.equal([modelName]);
    expect((list.data[0] as unknown as { max_model_len: number }).max_model_len).to.equal(MAX_LEN);
    const h = await fetch(`${base}/health`);
    expect(h.status).to.equal(200);
  });

  it('completions: greedy text equals InferenceEngine.generate, with exact usage', async () => {
    const r = await client.completions.create(greedy(PROMPTS[0]!));
    expect(r.object).to.equal('text_completion');
    expect(r.choices).to.have.length(1);
    expect(r.choices[0]!.text).to.equal(expected.get(PROMPTS[0]!));
    const ids = await engine.tokenizer.encode(PROMPTS[0]!);
    const own = await engine.generate(PROMPTS[0]!, { temperature: 0, maxTokens: 24 });
    expect(r.usage).to.deep.equal({
      prompt_tokens: ids.length,
      completion_tokens: own.tokenIds.length,
      total_tokens: ids.length + own.tokenIds.length,
    });
    expect(r.choices[0]!.finish_reason).to.equal(own.finishReason);
  });

  it('completions: several prompts (text and ids) and n choices, each in its place', async () => {
    const ids = await engine.tokenizer.encode(PROMPTS[2]!);
    const r = await client.completions.create({
      model: modelName,
      prompt: [PROMPTS[1]!, PROMPTS[3]!],
      max_tokens: 24,
      temperature: 0,
      n: 2,
    });
    expect(r.choices.map((c) => c.index)).to.deep.equal([0, 1, 2, 3]);
    expect(r.choices.map((c) => c.text)).to.deep.equal([
      expected.get(PROMPTS[1]!),
      expected.get(PROMPTS[1]!),
      expected.get(PROMPTS[3]!),
      expected.get(PROMPTS[3]!),
    ]);
    const t = await client.completions.create({ model: modelName, prompt: ids, max_tokens: 24, temperature: 0 });
    expect(t.choices[0]!.text).to.equal(expected.get(PROMPTS[2]!));
    // Seeded sampling: choice j draws with seed + j, so choice 0 equals n = 1 with the same seed.
    const seeded = { model: modelName, prompt: PROMPTS[0]!, max_tokens: 16, temperature: 1, seed: 7 };
    const one = await client.completions.create(seeded);
    const three = await client.completions.create({ ...seeded, n: 3 });
    expect(three.choices[0]!.text).to.equal(one.choices[0]!.text);
    expect(new Set(three.choices.map((c) => c.text)).size).to.be.greaterThan(1);
  });

  it('completions: streamed deltas concatenate to the text, finish reason last, then usage and [DONE]', async () => {
    const stream = await client.completions.create({
      ...greedy(PROMPTS[4]!),
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    let afterFinish = 0;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (finish !== null) ++afterFinish;
        text += c.text;
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    expect(text).to.equal(expected.get(PROMPTS[4]!));
    expect(finish).to.be.oneOf(['stop', 'length']);
    expect(afterFinish).to.equal(0);
    const ids = await engine.tokenizer.encode(PROMPTS[4]!);
    const own = await engine.generate(PROMPTS[4]!, { temperature: 0, maxTokens: 24 });
    expect(usage).to.deep.include({ prompt_tokens: ids.length, completion_tokens: own.tokenIds.length });
    // The raw stream ends with data: [DONE].
    const raw = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: PROMPTS[0], max_tokens: 4, stream: true }),
    });
    expect(raw.headers.get('content-type')).to.match(/^text\/event-stream/);
    const body = await raw.text();
    expect(body.trimEnd().endsWith('data: [DONE]')).to.equal(true);
    for (const ev of body.split('\n\n').filter(Boolean)) expect(ev).to.match(/^data: /);
  });

  it("chat: the model's template (here --chat-template), greedy equal to the engine, streamed and not", async () => {
    const messages = [
      { role: 'system' as const, content: 'You tell stories.' },
      { role: 'user' as const, content: 'Tell me about a cat.' },
    ];
    const text = `system: You tell stories.\nuser: Tell me about a cat.\nassistant:`;
    const ids = await engine.tokenizer.encode(text, { addSpecialTokens: false });
    const own = await engine.generate(ids, { temperature: 0, maxTokens: 20 });
    const r = await client.chat.completions.create({ model: modelName, messages, max_tokens: 20, temperature: 0 });
    expect(r.object).to.equal('chat.completion');
    expect(r.choices[0]!.message).to.deep.include({ role: 'assistant', content: own.text });
    expect(r.usage).to.deep.include({ prompt_tokens: ids.length, completion_tokens: own.tokenIds.length });
    const stream = await client.chat.completions.create({
      model: modelName,
      messages,
      max_completion_tokens: 20,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let role: string | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        role ??= c.delta.role;
        content += c.delta.content ?? '';
      }
    }
    expect(role).to.equal('assistant');
    expect(content).to.equal(own.text);
    expect(usage).to.deep.include({
      prompt_tokens: ids.length,
      completion_tokens: own.tokenIds.length,
      total_tokens: ids.length + own.tokenIds.length,
    });
  });

  it('logprobs: one per token, the sampled one first, top alternatives as asked (completions and chat)', async () => {
    const own = await engine.generate(PROMPTS[0]!, { temperature: 0, maxTokens: 8, logprobs: 2 });
    const r = await client.completions.create({
      model: modelName,
      prompt: PROMPTS[0]!,
      max_tokens: 8,
      temperature: 0,
      logprobs: 2,
    });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).to.have.length(own.tokenIds.length);
    expect(lp.tokens!.join('')).to.equal(r.choices[0]!.text);
    lp.token_logprobs!.forEach((v, i) => expect(v).to.be.closeTo(own.logprobs![i]!.logprob, 1e-9));
    for (const top of lp.top_logprobs!) expect(Object.keys(top).length).to.be.within(2, 3);
    expect(lp.text_offset![0]).to.equal(0);
    const c = await client.chat.completions.create({
      model: modelName,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 6,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = c.choices[0]!.logprobs!.content!;
    expect(content.length).to.equal(c.usage!.completion_tokens);
    for (const t of content) {
      expect(t.top_logprobs).to.have.length(3);
      expect(t.logprob).to.be.at.most(0);
      expect(Buffer.from(t.bytes!).toString('utf8')).to.equal(t.token);
      // Greedy: the sampled token is the most likely.
      expect(t.logprob).to.be.closeTo(t.top_logprobs[0]!.logprob, 1e-9);
    }
  });

  it('200 concurrent streaming requests all finish with the right text', async () => {
    const rand = prng(5);
    const jobs = Array.from({ length: 200 }, () => PROMPTS[Math.floor(rand() * PROMPTS.length)]!);
    const texts = await Promise.all(
      jobs.map(async (prompt) => {
        const stream = await client.completions.create({
          model: modelName,
          prompt,
          max_tokens: 24,
          temperature: 0,
          stream: true,
        });
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
        return text;
      }),
    );
    texts.forEach((t, i) => expect(t, `request ${i}`).to.equal(expected.get(jobs[i]!)));
    expect(server.inFlight).to.equal(0);
  });

  it('50 clients that disconnect mid-stream leave no request running and 0 used blocks', async () => {
    const before = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const stream = await client.completions.create({
          model: modelName,
          prompt: PROMPTS[i % PROMPTS.length]!,
          max_tokens: LONG,
          ignore_eos: true,
          temperature: 0,
          stream: true,
        } as OpenAI.CompletionCreateParamsStreaming);
        let n = 0;
        for await (const chunk of stream) {
          if (chunk.choices[0]?.text && ++n >= 2) break; // breaking out closes the connection
        }
      }),
    );
    const deadline = Date.now() + 10_000;
    let stats = await engine.getStats();
    while (
      (stats.memory.usedBlocks > 0 || stats.scheduler.running + stats.scheduler.waiting > 0) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 20));
      stats = await engine.getStats();
    }
    expect(stats.memory.usedBlocks).to.equal(0);
    expect(stats.scheduler.running + stats.scheduler.waiting).to.equal(0);
    expect(server.inFlight).to.equal(0);
    const after = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    const key = `mini_vllm:request_success_total{model_name="${modelName}",finished_reason="abort"}`;
    expect((after.get(key) ?? 0) - (before.get(key) ?? 0)).to.equal(50);
  });

  it("bad input gets 400 in OpenAI's error shape, naming the parameter", async () => {
    const url = `${base}/v1/completions`;
    const chat = `${base}/v1/chat/completions`;
    expectError(await post(url, '{"prompt": "x", '), 400, null, 'invalid_json');
    expectError(await post(url, 'not json'), 400, null, 'invalid_json');
    expectError(await post(url, { prompt: 'x', max_tokens: '5' }), 400, 'max_tokens');
    expectError(await post(url, { prompt: 'x', temperature: 'hot' }), 400, 'temperature');
    expectError(await post(url, { prompt: 'x', stream: 'yes' }), 400, 'stream');
    expectError(await post(url, { prompt: 'x', n: 1.5 }), 400, 'n');
    expectError(await post(url, { prompt: 5 }), 400, 'prompt');
    expectError(await post(url, { prompt: [] }), 400, 'prompt');
    expectError(await post(url, {}), 400, 'prompt', 'missing_required_parameter');
    expectError(await post(url, { prompt: [1, 2, 10_000_000] }), 400, 'prompt');
    expectError(await post(url, { prompt: 'x', model: 'gpt-4' }), 400, 'model', 'model_not_found');
    expectError(await post(url, { prompt: 'x', max_tokens: 600 }), 400, 'max_tokens', 'context_length_exceeded');
    expectError(await post(url, { prompt: 'x '.repeat(600) }), 400, 'max_tokens', 'context_length_exceeded');
    for (const n of [0, 129, -1]) expectError(await post(url, { prompt: 'x', n }), 400, 'n');
    for (const m of [0, -3]) expectError(await post(url, { prompt: 'x', max_tokens: m }), 400, 'max_tokens');
    expectError(await post(url, { prompt: 'x', temperature: -1 }), 400, 'temperature');
    expectError(await post(url, { prompt: 'x', top_p: 0 }), 400, 'top_p');
    expectError(await post(url, { prompt: 'x', logprobs: 21 }), 400, 'logprobs');
    expectError(await post(url, { prompt: 'x', echo: true }), 400, 'echo', 'unsupported');
    expectError(await post(chat, { messages: [] }), 400, 'messages');
    expectError(await post(chat, { messages: 'hi' }), 400, 'messages');
    expectError(await post(chat, { messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages.0.role');
    expectError(
      await post(chat, { messages: [{ role: 'user', content: 'x' }], max_tokens: 1000 }),
      400,
      'max_tokens',
      'context_length_exceeded',
    );
    expectError(await post(chat, { messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }), 400, 'top_logprobs');
    expectError(
      await post(chat, { messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }),
      400,
      'messages.0.content',
      'unsupported',
    );
    const missing = await fetch(`${base}/v1/nothing`);
    expectError({ status: missing.status, json: (await missing.json()) as Record<string, unknown> }, 404);
    // The official client raises its typed error with the status.
    let thrown: unknown;
    try {
      await client.completions.create({ model: modelName, prompt: 'x', max_tokens: 0 });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).to.be.instanceOf(OpenAI.BadRequestError);
  });

  it('never a 500 for bad input: 300 mutated bodies each get 200 or 400', async () => {
    const rand = prng(11);
    const junk = () =>
      [
        null,
        true,
        -1,
        0,
        1e308,
        -1e308,
        2.5,
        '',
        'x',
        '∞',
        [],
        [null],
        [-1],
        [[]],
        {},
        { a: 1 },
        'NaN',
        2 ** 53 + 2,
        [1.5],
        ['a', 3],
      ][Math.floor(rand() * 20)];
    const fields = [
      'prompt',
      'messages',
      'max_tokens',
      'temperature',
      'top_p',
      'top_k',
      'min_p',
      'n',
      'stop',
      'stop_token_ids',
      'stream',
      'stream_options',
      'seed',
      'logprobs',
      'top_logprobs',
      'presence_penalty',
      'frequency_penalty',
      'repetition_penalty',
      'ignore_eos',
      'model',
      'max_completion_tokens',
      'echo',
      'best_of',
    ];
    for (let i = 0; i < 300; ++i) {
      const isChat = rand() < 0.5;
      const body: Record<string, unknown> = isChat
        ? { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }
        : { prompt: 'hi', max_tokens: 2 };
      for (let k = 0; k < 1 + Math.floor(rand() * 3); ++k) body[fields[Math.floor(rand() * fields.length)]!] = junk();
      if (body.stream === true) body.stream = false;
      if (typeof body.max_tokens === 'number' && body.max_tokens > 4) body.max_tokens = 4;
      delete body.max_completion_tokens;
      const res = await post(`${base}/v1/${isChat ? 'chat/' : ''}completions`, body);
      expect(res.status, `${JSON.stringify(body)} → ${JSON.stringify(res.json)}`).to.be.oneOf([200, 400]);
      if (res.status === 400) expectError(res, 400);
    }
  });

  it("an API key guards /v1 (401 in OpenAI's shape) but not /health and /metrics", async () => {
    const guarded = new OpenAIServer(engine, { apiKey: 'sk-test', chatTemplate: TEMPLATE });
    const url = (await guarded.listen('127.0.0.1', 0)).url;
    try {
      expectError(await post(`${url}/v1/completions`, { prompt: 'x', max_tokens: 2 }), 401, null, 'invalid_api_key');
      expectError(
        await post(`${url}/v1/completions`, { prompt: 'x', max_tokens: 2 }, { authorization: 'Bearer sk-wrong' }),
        401,
      );
      const ok = await post(
        `${url}/v1/completions`,
        { prompt: 'x', max_tokens: 2 },
        { authorization: 'Bearer sk-test' },
      );
      expect(ok.status).to.equal(200);
      const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-nope', maxRetries: 0 });
      let thrown: unknown;
      try {
        await c.models.list();
      } catch (e) {
        thrown = e;
      }
      expect(thrown).to.be.instanceOf(OpenAI.AuthenticationError);
      expect((await fetch(`${url}/health`)).status).to.equal(200);
      expect((await fetch(`${url}/metrics`)).status).to.equal(200);
    } finally {
      await guarded.close();
    }
  });

  it('over its bound of requests in flight the server answers 503 with retry-after, and recovers', async () => {
    const small = new OpenAIServer(engine, { maxPendingRequests: 2 });
    const url = (await small.listen('127.0.0.1', 0)).url;
    const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
    try {
      const streams = await Promise.all(
        [0, 1].map(async () => {
          const s = await c.completions.create({
            model: modelName,
            prompt: 'x',
            max_tokens: LONG,
            ignore_eos: true,
            stream: true,
          } as OpenAI.CompletionCreateParamsStreaming);
          const it = s[Symbol.asyncIterator]();
          await it.next();
          return it;
        }),
      );
      const over = await post(`${url}/v1/completions`, { prompt: 'x', max_tokens: 2 });
      expectError(over, 503, null, 'overloaded');
      expect(over.headers.get('retry-after')).to.equal('1');
      expectError(await post(`${url}/v1/completions`, { prompt: 'x', max_tokens: 2, n: 3 }), 503);
      for (const it of streams) await it.return?.();
      const deadline = Date.now() + 10_000;
      while (small.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect((await post(`${url}/v1/completions`, { prompt: 'x', max_tokens: 2 })).status).to.equal(200);
    } finally {
      await small.close();
    }
  });

  it('/metrics is Prometheus text with request counts, TTFT / TPOT / E2E histograms, queue and KV gauges', async () => {
    const before = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    const r = await client.completions.create({
      model: modelName,
      prompt: PROMPTS[1]!,
      max_tokens: 10,
      temperature: 0,
    });
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const m = parsePrometheus(await res.text());
    const L = `{model_name="${modelName}"}`;
    const core0 = `{model_name="${modelName}",engine="0"}`; // the engine gauges are per engine core
    expect(
      m.get(`mini_vllm:prompt_tokens_total${L}`)! - (before.get(`mini_vllm:prompt_tokens_total${L}`) ?? 0),
    ).to.equal(r.usage!.prompt_tokens);
    expect(
      m.get(`mini_vllm:generation_tokens_total${L}`)! - (before.get(`mini_vllm:generation_tokens_total${L}`) ?? 0),
    ).to.equal(r.usage!.completion_tokens);
    for (const h of [
      'time_to_first_token_seconds',
      'request_time_per_output_token_seconds',
      'e2e_request_latency_seconds',
      'inter_token_latency_seconds',
    ]) {
      const name = `mini_vllm:${h}`;
      const count = m.get(`${name}_count${L}`)!;
      expect(count, name).to.be.greaterThan(0);
      expect(m.get(`${name}_bucket{le="+Inf",model_name="${modelName}"}`)).to.equal(count);
      const buckets = [...m].filter(([k]) => k.startsWith(`${name}_bucket`)).map(([, v]) => v);
      for (let i = 1; i < buckets.length; ++i) expect(buckets[i]!).to.be.at.least(buckets[i - 1]!);
    }
    for (const g of [
      'num_requests_running',
      'num_requests_waiting',
      'kv_cache_usage_perc',
      'avg_generation_throughput_toks_per_s',
    ])
      expect(m.has(`mini_vllm:${g}${core0}`), g).to.equal(true);
    expect(m.get(`mini_vllm:num_requests_running${core0}`)).to.equal(0);
    expect(m.get(`mini_vllm:kv_cache_usage_perc${core0}`)).to.equal(0);
    // The pod's totals under vLLM's names, for gateways.
    expect(m.get(`vllm:num_requests_waiting${L}`)).to.equal(0);
    expect(m.get(`vllm:kv_cache_usage_perc${L}`)).to.equal(0);
    expect(sum(m, 'mini_vllm:http_requests_total')).to.be.greaterThan(0);
  });
});

describe('serve(): graceful shutdown', () => {
  const start = (shutdownTimeoutMs: number) =>
    serve({
      model: 'dummy:stories15M',
      device: 'cpu',
      maxModelLen: 256,
      port: 0,
      handleSignals: false,
      shutdownTimeoutMs,
    });

  /** A streamed completion whose first chunk has arrived (it is in flight: an event, not a poll); the rest to read. */
  const inFlight = async (url: string, maxTokens: number) => {
    const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
    const stream = await c.completions.create({
      model: 'dummy:stories15M',
      prompt: 'Once',
      max_tokens: maxTokens,
      ignore_eos: true,
      stream: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).done).to.equal(false);
    // the finish reason of the last chunk
    return async () => {
      let last: string | null = null;
      for (let r = await it.next(); !r.done; r = await it.next()) last = r.value.choices[0]?.finish_reason ?? last;
      return last;
    };
  };

  it('finishes what is in flight within the grace period, refuses new requests, and frees every byte', async () => {
    const baseline = memoryStats().cpu.bytes;
    // a grace no machine reaches: shutdown() waits for the request to end by itself
    const running = await start(600_000);
    const url = running.url;
    const rest = await inFlight(url, 40);
    const down = running.shutdown();
    const late = await fetch(`${url}/v1/completions`, { method: 'POST' }).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(late).to.be.oneOf([503, 'refused']);
    expect(await rest()).to.equal('length');
    await down;
    expect(memoryStats().cpu.bytes).to.equal(baseline);
  });

  it('aborts what is still running when the grace period ends', async () => {
    // no grace: the abort goes out at once, and 249 tokens cannot come before the engine's next step reads it
    const running = await start(0);
    const rest = await inFlight(running.url, 250);
    await running.shutdown();
    // Connections close only once every response is written: the client gets its partial answer, ended by the abort.
    expect(await rest()).to.equal('abort');
    expect(running.server.inFlight).to.equal(0);
  });
});

describe('mini-vllm serve (CLI)', () => {
  it('serves, then on SIGTERM ends the stream in flight and exits 0 with nothing on stdout', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--port', '0', '--max-model-len', '256', '--shutdown-timeout', '0', '--device', 'cpu'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '',
      stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /serving "[^"]+" at (http:\/\/[^\s]+)\/v1/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`serve exited (${code}) before listening: ${stderr}`)));
    });
    expect((await fetch(`${url}/health`)).status).to.equal(200);
    const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
    const stream = await c.completions.create({
      model: 'dummy:stories15M',
      prompt: 'Once',
      max_tokens: 240,
      ignore_eos: true,
      stream: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let chunks = 0;
    let last: string | null | undefined = null;
    for await (const chunk of stream) {
      if (++chunks === 3) child.kill('SIGTERM');
      last = chunk.choices[0]?.finish_reason ?? last;
    }
    expect(last).to.equal('abort');
    expect(await exited).to.equal(0);
    expect(stderr).to.match(/SIGTERM/);
    expect(stdout).to.equal('');
  });

  it('every command has --help', async () => {
    for (const cmd of ['generate', 'serve', 'bench', 'info']) {
      const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, cmd, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let text = '';
        child.stdout.on('data', (d: Buffer) => (text += d.toString()));
        child.on('exit', (code) => resolve({ code, text }));
      });
      expect(out.code, cmd).to.equal(0);
      expect(out.text).to.contain(`Usage: mini-vllm ${cmd}`);
    }
  });
});
