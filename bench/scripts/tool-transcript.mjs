#!/usr/bin/env node
// A tool-calling conversation through the official `openai` client against `mini-vllm serve` (a dummy model, so the
// calls come from the constraint, not from the model's judgement): tool_choice "required", a named function streamed,
// "auto" with the hermes parser, and the tool's answer sent back in the history. Writes each request and response.
//
//   node bench/scripts/tool-transcript.mjs OUT_DIR   (after npm run build)
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { scriptArgs } from './args.mjs';

const USAGE = `usage: node bench/scripts/tool-transcript.mjs OUT_DIR
  a tool-calling conversation through the openai client against mini-vllm serve, written to OUT_DIR`;
const out = scriptArgs(USAGE, { allowPositionals: true }).positionals[0];
if (!out) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
mkdirSync(out, { recursive: true });
// a Hermes-style template: the tools in the system turn, calls as <tool_call> JSON, tool results as their own turn
const template =
  "{%- if tools %}{{ '<|system|>\\nYou may call these tools:\\n' }}{% for t in tools %}{{ t.function | tojson }}" +
  "{{ '\\n' }}{% endfor %}{% endif %}{%- for m in messages %}{{ '<|' + m.role + '|>\\n' }}{% if m.tool_calls %}" +
  "{% for c in m.tool_calls %}{{ '<tool_call>' + (c.function | tojson) + '</tool_call>' }}{% endfor %}{% else %}" +
  "{{ m.content }}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
const templateFile = join(out, 'chat-template.jinja');
writeFileSync(templateFile, template);
const args = ['dist/lib/cli.js', 'serve', '-m', 'dummy:stories42M', '--port', '0', '--seed', '0'];
args.push('--chat-template', templateFile, '--tool-call-parser', 'hermes');
const server = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise((resolve, reject) => {
  let err = '';
  server.stderr.on('data', (d) => {
    err += d;
    const m = /serving "[^"]+" at (http:\/\/\S+)\/v1/.exec(err);
    if (m) resolve(m[1]);
  });
  server.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
});
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 16 }, unit: { enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'The local time at a UTC offset',
      parameters: {
        type: 'object',
        properties: { utc_offset: { type: 'integer', minimum: -12, maximum: 14 } },
        required: ['utc_offset'],
      },
    },
  },
];
const log = [];
const record = (title, request, response) => log.push({ title, request, response });
const messages = [{ role: 'user', content: 'What is the weather in Oslo?' }];
const model = 'dummy:stories42M';

// 1. tool_choice "required", not streamed
const req1 = { model, messages, tools, tool_choice: 'required', max_tokens: 120, seed: 1 };
const r1 = await client.chat.completions.create(req1);
record('tool_choice "required" (not streamed)', req1, r1);

// 2. a named function, streamed: the chunks as the client receives them
const req2 = { ...req1, tool_choice: { type: 'function', function: { name: 'get_weather' } }, stream: true, seed: 2 };
const chunks = [];
for await (const chunk of await client.chat.completions.create(req2)) chunks.push(chunk);
record('a named function (streamed: every chunk)', req2, chunks);

// 3. "auto" with the hermes parser: the output held to a call by guided_choice, as a model would write it
const said = '<tool_call>\n{"name": "get_time", "arguments": {"utc_offset": 1}}\n</tool_call>';
const req3 = { model, messages, tools, max_tokens: 200, guided_choice: [`Let me check. ${said}`] };
const r3 = await client.chat.completions.create(req3);
record('tool_choice "auto", --tool-call-parser hermes (not streamed)', req3, r3);
const chunks3 = [];
for await (const chunk of await client.chat.completions.create({ ...req3, stream: true })) chunks3.push(chunk);
record('tool_choice "auto", --tool-call-parser hermes (streamed: every chunk)', { ...req3, stream: true }, chunks3);

// 4. the tool's result back in the history; the answer is text
const call = r1.choices[0].message.tool_calls[0];
const req4 = {
  model,
  tools,
  max_tokens: 12,
  temperature: 0,
  messages: [
    ...messages,
    { role: 'assistant', content: null, tool_calls: r1.choices[0].message.tool_calls },
    { role: 'tool', tool_call_id: call.id, content: '{"temperature": 4, "sky": "clear"}' },
  ],
};
const r4 = await client.chat.completions.create(req4);
record('the tool result in the history (tool_choice auto; the dummy model answers text)', req4, r4);

server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
// one JSON line per exchange (a stream's chunks in its response array)
writeFileSync(join(out, 'tool-transcript.jsonl'), log.map((e) => `${JSON.stringify(e)}\n`).join(''));
const md = log.flatMap(({ title, request, response }) => [
  `## ${title}`,
  '',
  'request:',
  '```json',
  JSON.stringify(request),
  '```',
  'response:',
  '```json',
  ...(Array.isArray(response) ? response.map((c) => JSON.stringify(c)) : [JSON.stringify(response, null, 1)]),
  '```',
  '',
]);
writeFileSync(
  join(out, 'tool-transcript.md'),
  `# Tool calling through the openai client (${new Date().toISOString()})\n\n` +
    `mini-vllm ${args.slice(1).join(' ')}\n\n${md.join('\n')}`,
);
process.stdout.write(`${md.join('\n')}\n`);
