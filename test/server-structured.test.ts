// Structured output and tool calling through the server, driven by the official `openai` client on a random-weight
// model (dummy:stories15M): response_format, vLLM's guided fields, the logit processors, constraint errors as 400s
// (streamed or not), tools with tool_choice required / named / auto (the hermes parser), streamed as delta.tool_calls,
// and tool calls in the history. The parsers alone on texts each family writes.
import { expect } from 'chai';
import OpenAI from 'openai';
import { InferenceEngine } from '../lib/engine/index.js';
import { OpenAIServer } from '../lib/server/index.js';
import { planTools, streamableContent, toolAnswer, type ToolBody } from '../lib/server/tools.js';
import { renderChatTemplate } from '../lib/tokenizer/chat-template.js';

/** A template that writes the tools and the calls of the history the way Hermes-style templates do. */
const TEMPLATE =
  "{%- if tools %}{{ 'tools:' }}{% for t in tools %}{{ ' ' + t.function.name }}{% endfor %}{{ '\\n' }}{% endif %}" +
  "{%- for m in messages %}{{ m.role + ': ' }}{% if m.tool_calls %}{% for c in m.tool_calls %}{{ '<tool_call>' }}" +
  "{{ c.function.name + ' ' + (c.function.arguments | tojson) }}{{ '</tool_call>' }}{% endfor %}{% else %}" +
  "{{ m.content }}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";

const WEATHER: ToolBody = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'the weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] } },
      required: ['city', 'unit'],
    },
  },
};
const TIME: ToolBody = {
  type: 'function',
  function: {
    name: 'get_time',
    parameters: {
      type: 'object',
      properties: { zone: { type: 'integer', minimum: -12, maximum: 14 } },
      required: ['zone'],
    },
  },
};

function expectWeatherArgs(args: string): void {
  const v = JSON.parse(args) as { city: string; unit: string };
  expect(Object.keys(v)).to.deep.equal(['city', 'unit']);
  expect(v.city.length).to.be.at.most(12);
  expect(['c', 'f']).to.include(v.unit);
}

describe('OpenAI server: structured output and tool calling (dummy:stories15M)', function () {
  let engine: InferenceEngine;
  let server: OpenAIServer;
  let client: OpenAI;
  let base: string;
  before(async () => {
    engine = await InferenceEngine.create({ model: 'dummy:stories15M', device: 'cpu', seed: 0 });
    server = new OpenAIServer(engine, { chatTemplate: TEMPLATE, toolCallParser: 'hermes' });
    base = (await server.listen('127.0.0.1', 0)).url;
    client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await server?.close();
    await engine?.stop();
  });
  const user = [{ role: 'user' as const, content: 'Hi' }];

  it('response_format json_object and json_schema (strict): the message content parses and fits', async () => {
    const obj = await client.chat.completions.create({
      model: server.modelName,
      messages: user,
      response_format: { type: 'json_object' },
      max_tokens: 200,
      seed: 1,
    });
    const text = obj.choices[0]!.message.content!;
    if (obj.choices[0]!.finish_reason === 'stop') expect(JSON.parse(text)).to.be.an('object');
    else expect(text.startsWith('{'), text).to.equal(true);
    const schema = WEATHER.function.parameters!;
    const r = await client.chat.completions.create({
      model: server.modelName,
      messages: user,
      response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } },
      max_tokens: 100,
      n: 3,
      seed: 2,
    });
    for (const c of r.choices) {
      expect(c.finish_reason).to.equal('stop');
      expectWeatherArgs(c.message.content!);
    }
  });

  it("vLLM's guided fields on completions and chat, streamed and not", async () => {
    const body = { model: server.modelName, prompt: 'x', max_tokens: 20, guided_regex: '[0-9]{4}-[a-c]{2}' };
    const c = await client.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming);
    expect(c.choices[0]!.text).to.match(/^[0-9]{4}-[a-c]{2}$/);
    const stream = await client.chat.completions.create({
      model: server.modelName,
      messages: user,
      max_tokens: 20,
      stream: true,
      guided_choice: ['north', 'south west'],
    } as unknown as OpenAI.ChatCompletionCreateParamsStreaming);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(['north', 'south west']).to.include(text);
  });

  it('logit_bias and allowed_token_ids change the output', async () => {
    const free = await client.completions.create({
      model: server.modelName,
      prompt: 'x',
      max_tokens: 4,
      temperature: 0,
    });
    const pushed = await client.completions.create({
      model: server.modelName,
      prompt: 'x',
      max_tokens: 4,
      temperature: 0,
      logit_bias: { 1234: 100 },
    });
    const piece = (await engine.tokenizer.decode([1234, 1234, 1234, 1234])).trim();
    expect(pushed.choices[0]!.text.trim()).to.equal(piece);
    expect(pushed.choices[0]!.text).to.not.equal(free.choices[0]!.text);
  });

  it('a bad schema, regex or grammar is a 400 saying where, also when streaming', async () => {
    for (const stream of [false, true]) {
      const r = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          messages: user,
          stream,
          response_format: {
            type: 'json_schema',
            json_schema: {
              name: 'x',
              schema: { type: 'object', properties: { n: { type: 'integer', multipleOf: 2 } } },
            },
          },
        }),
      });
      expect(r.status).to.equal(400);
      const e = ((await r.json()) as { error: { message: string } }).error;
      expect(e.message).to.match(/#\/properties\/n: "multipleOf" is not supported/);
    }
    const g = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', guided_grammar: 'root ::= "a" b' }),
    });
    expect(g.status).to.equal(400);
    expect(((await g.json()) as { error: { message: string } }).error.message).to.match(/Rule "b" is not defined/);
  });

  it('tool_choice required: finish_reason tool_calls, every call one of the tools with valid arguments', async () => {
    const r = await client.chat.completions.create({
      model: server.modelName,
      messages: user,
      tools: [WEATHER, TIME],
      tool_choice: 'required',
      max_tokens: 200,
      seed: 3,
    });
    const c = r.choices[0]!;
    expect(c.finish_reason).to.equal('tool_calls');
    expect(c.message.content).to.equal(null);
    expect(c.message.tool_calls!.length).to.be.at.least(1);
    for (const call of c.message.tool_calls!) {
      expect(call.type).to.equal('function');
      expect(call.id).to.match(/^chatcmpl-tool-/);
      const fn = (call as { function: { name: string; arguments: string } }).function;
      if (fn.name === 'get_weather') expectWeatherArgs(fn.arguments);
      else {
        expect(fn.name).to.equal('get_time');
        const z = (JSON.parse(fn.arguments) as { zone: number }).zone;
        expect(Number.isInteger(z) && z >= -12 && z <= 14).to.equal(true);
      }
    }
  });

  it('a named function, streamed: delta.tool_calls carry the id and name once, then the arguments', async () => {
    const stream = await client.chat.completions.create({
      model: server.modelName,
      messages: user,
      tools: [WEATHER, TIME],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 100,
      stream: true,
      seed: 4,
    });
    let args = '';
    const ids: string[] = [];
    const names: string[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const d = chunk.choices[0];
      if (!d) continue;
      for (const tc of d.delta.tool_calls ?? []) {
        expect(tc.index).to.equal(0);
        if (tc.id) ids.push(tc.id);
        if (tc.function?.name) names.push(tc.function.name);
        args += tc.function?.arguments ?? '';
      }
      finish = d.finish_reason ?? finish;
    }
    expect(ids).to.have.length(1);
    expect(names).to.deep.equal(['get_weather']);
    expect(finish).to.equal('stop');
    expectWeatherArgs(args);
  });

  it('tool_choice auto: the hermes parser finds a call in the text, streamed and not', async () => {
    const said = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}}\n</tool_call>';
    const body = {
      model: server.modelName,
      messages: user,
      tools: [WEATHER],
      max_tokens: 200,
      guided_choice: [`Let me look. ${said}`],
    };
    const r = await client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const c = r.choices[0]!;
    expect(c.finish_reason).to.equal('tool_calls');
    expect(c.message.content).to.equal('Let me look. ');
    const fn = (c.message.tool_calls![0] as { function: { name: string; arguments: string } }).function;
    expect(fn).to.deep.equal({ name: 'get_weather', arguments: '{"city":"Oslo","unit":"c"}' });
    const stream = await client.chat.completions.create({
      ...body,
      stream: true,
    } as unknown as OpenAI.ChatCompletionCreateParamsStreaming);
    let content = '';
    const calls: unknown[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const d = chunk.choices[0];
      if (!d) continue;
      content += d.delta.content ?? '';
      calls.push(...(d.delta.tool_calls ?? []));
      finish = d.finish_reason ?? finish;
    }
    expect(content).to.equal('Let me look. ');
    expect(calls).to.have.length(1);
    expect((calls[0] as { function: unknown }).function).to.deep.equal(fn);
    expect(finish).to.equal('tool_calls');
  });

  it('tool calls and tool results in the history reach the template; tool_choice none answers text', async () => {
    const messages = [
      { role: 'user' as const, content: 'Weather?' },
      {
        role: 'assistant' as const,
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: 'tool' as const, tool_call_id: 'call_1', content: '21 C' },
    ];
    const r = await client.chat.completions.create({
      model: server.modelName,
      messages,
      tools: [WEATHER],
      tool_choice: 'none',
      max_tokens: 3,
      temperature: 0,
    });
    expect(r.choices[0]!.message.tool_calls ?? []).to.deep.equal([]);
    const rendered = renderChatTemplate(
      TEMPLATE,
      [
        { role: 'user', content: 'Weather?' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Rome' } } },
          ],
        },
        { role: 'tool', content: '21 C', tool_call_id: 'call_1' },
      ],
      { bosToken: '', eosToken: '', addGenerationPrompt: true, tools: [WEATHER] },
    );
    expect(rendered)
      .to.contain('tools: get_weather\n')
      .and.contain('<tool_call>get_weather {"city": "Rome"}</tool_call>');
    const ids = await engine.tokenizer.encode(rendered, { addSpecialTokens: false });
    expect(r.usage!.prompt_tokens).to.equal(ids.length);
  });

  it('bad tool requests are 400s: auto with no parser, an unknown named function, a refused keyword', async () => {
    const plain = new OpenAIServer(engine, { chatTemplate: TEMPLATE });
    const url = (await plain.listen('127.0.0.1', 0)).url;
    try {
      const send = async (u: string, extra: Record<string, unknown>) => {
        const r = await fetch(`${u}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ messages: user, tools: [WEATHER], ...extra }),
        });
        return { status: r.status, error: ((await r.json()) as { error: { message: string; param: string } }).error };
      };
      const auto = await send(url, {});
      expect(auto.status).to.equal(400);
      expect(auto.error.message).to.match(/"auto" tool choice needs the server started with --tool-call-parser/);
      const named = await send(base, { tool_choice: { type: 'function', function: { name: 'nope' } } });
      expect(named.status).to.equal(400);
      expect(named.error.message).to.match(/tool_choice names "nope", not one of the tools \(get_weather\)/);
      const odd = { ...WEATHER, function: { ...WEATHER.function, parameters: { type: 'object', not: {} } } };
      const refused = await send(base, { tools: [odd], tool_choice: 'required' });
      expect(refused.status).to.equal(400);
      expect(refused.error.param).to.equal('tools.0.function.parameters');
      expect(refused.error.message).to.match(/"not" is not supported/);
    } finally {
      await plain.close();
    }
  });
});

describe('tool call parsers', () => {
  const auto = planTools([WEATHER], 'auto', true, 'hermes')!;
  it('hermes: the text before the first <tool_call> is content; every call is parsed', () => {
    const a = toolAnswer(
      'Sure.<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>\n' +
        '<tool_call>{"name": "g", "arguments": {}}</tool_call>',
      auto,
      'hermes',
    );
    expect(a.content).to.equal('Sure.');
    expect(a.calls.map((c) => c.function)).to.deep.equal([
      { name: 'f', arguments: '{"a":1}' },
      { name: 'g', arguments: '{}' },
    ]);
    expect(toolAnswer('no calls here', auto, 'hermes')).to.deep.equal({ content: 'no calls here', calls: [] });
    expect(toolAnswer('<tool_call>{broken', auto, 'hermes').calls).to.deep.equal([]);
  });
  it('llama3_json: the whole output a call (or several joined by ;), with or without <|python_tag|>', () => {
    const a = toolAnswer(
      '<|python_tag|>{"name": "f", "parameters": {"x": "y"}}; {"name": "g", "parameters": {}}',
      auto,
      'llama3_json',
    );
    expect(a.content).to.equal(null);
    expect(a.calls.map((c) => c.function.name)).to.deep.equal(['f', 'g']);
    expect(toolAnswer('{"not": "a call"}', auto, 'llama3_json').calls).to.deep.equal([]);
  });
  it('mistral: [TOOL_CALLS] then a list, or the list alone (the marker is a special token)', () => {
    for (const text of ['[TOOL_CALLS][{"name": "f", "arguments": {"q": 2}}]', '[{"name": "f", "arguments": {"q": 2}}]'])
      expect(toolAnswer(text, auto, 'mistral').calls.map((c) => c.function)).to.deep.equal([
        { name: 'f', arguments: '{"q":2}' },
      ]);
  });
  it('parallel_tool_calls false keeps the first call; required and named plans constrain the output', () => {
    const one = planTools([WEATHER], 'auto', false, 'hermes')!;
    const text =
      '<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>{"name": "g", "arguments": {}}</tool_call>';
    expect(toolAnswer(text, one, 'hermes').calls).to.have.length(1);
    const req = planTools([WEATHER, TIME], 'required', false, null)!;
    expect(req.constraint.guidedJson).to.include({ type: 'array', minItems: 1, maxItems: 1 });
    const named = planTools([WEATHER, TIME], { type: 'function', function: { name: 'get_time' } }, true, null)!;
    expect(named.constraint.guidedJson).to.deep.equal(TIME.function.parameters);
  });
  it('streams content only while no call can be starting', () => {
    expect(streamableContent('Hello <tool', auto, 'hermes')).to.equal('Hello '.length);
    expect(streamableContent('Hello <tool_call>{"na', auto, 'hermes')).to.equal('Hello '.length);
    expect(streamableContent('Hello there', auto, 'hermes')).to.equal('Hello there'.length);
    const llama = planTools([WEATHER], 'auto', true, 'llama3_json')!;
    expect(streamableContent(' {"name"', llama, 'llama3_json')).to.equal(0);
    expect(streamableContent('It is sunny', llama, 'llama3_json')).to.equal('It is sunny'.length);
  });
});
