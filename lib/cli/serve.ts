// `mini-vllm serve`: the OpenAI-compatible server, until SIGINT / SIGTERM.
import { existsSync, readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { serve } from '../server/index.js';
import { TOOL_CALL_PARSERS, type ToolCallParser } from '../server/tools.js';
import { addEngineOptions, type EngineFlags, engineOptions, log, num, progressBar } from './flags.js';

interface ServeFlags extends EngineFlags {
  host: string;
  port: number;
  apiKey?: string;
  servedModelName?: string;
  chatTemplate?: string;
  maxPendingRequests: number;
  shutdownTimeout: number;
  seed?: number;
  logRequests?: boolean;
  toolCallParser?: ToolCallParser;
  enableAutoToolChoice?: boolean;
}

async function runServe(f: ServeFlags): Promise<void> {
  const options = engineOptions(f);
  if (f.enableAutoToolChoice && !f.toolCallParser)
    throw new InvalidArgumentError('--enable-auto-tool-choice needs --tool-call-parser (hermes, llama3_json, mistral)');
  let chatTemplate: string | undefined;
  if (f.chatTemplate !== undefined)
    chatTemplate = existsSync(f.chatTemplate) ? readFileSync(f.chatTemplate, 'utf8') : f.chatTemplate;
  const apiKey = f.apiKey ?? process.env.MINI_VLLM_API_KEY;
  const bar = progressBar();
  const running = await serve({
    ...options,
    ...(f.seed !== undefined ? { seed: f.seed } : {}),
    host: f.host,
    port: f.port,
    maxPendingRequests: f.maxPendingRequests,
    shutdownTimeoutMs: f.shutdownTimeout * 1000,
    ...(apiKey ? { apiKey } : {}),
    ...(f.servedModelName ? { servedModelName: f.servedModelName } : {}),
    ...(chatTemplate !== undefined ? { chatTemplate } : {}),
    logRequests: !!f.logRequests,
    ...(f.toolCallParser ? { toolCallParser: f.toolCallParser } : {}),
    onProgress: bar.onProgress,
    log,
  }).finally(() => bar.stop());
  const { engine, server } = running;
  log(
    `mini-vllm: ${engine.options.model} on ${engine.options.device} in ${engine.dtype} (max model len ` +
      `${engine.options.maxModelLen}, loaded in ${engine.loadSeconds.toFixed(2)} s)`,
  );
  log(
    `mini-vllm: serving "${server.modelName}" at ${running.url}/v1${apiKey ? ' (API key required)' : ''}; Ctrl-C to ` +
      `stop`,
  );
}

export function addServeCommand(program: Command): void {
  const srv = program
    .command('serve')
    .description(
      'serve the model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, ' +
        '/health, /metrics)',
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', num('int'), 8000)
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" on /v1 routes (default: $MINI_VLLM_API_KEY)')
    .option('--served-model-name <name>', 'the model name clients send (default: --model)')
    .option(
      '--chat-template <file-or-template>',
      "a Jinja chat template (a file, or the template itself) instead of the model's",
    )
    .option(
      '--max-pending-requests <n>',
      'requests (choices) in flight beyond which new ones get 503',
      num('int'),
      1024,
    )
    .option(
      '--shutdown-timeout <seconds>',
      'on SIGINT / SIGTERM, how long in-flight requests may finish before they are aborted',
      num('float'),
      5,
    )
    .option('--seed <n>', "seeds unseeded requests' draws and a dummy model's weights", num('int'))
    .option('--log-requests', 'log every HTTP request to stderr')
    .addOption(
      new Option(
        '--tool-call-parser <name>',
        'how "auto" tool choice finds calls in the text (vLLM\'s parsers; without it only required / named)',
      ).choices(TOOL_CALL_PARSERS),
    )
    .option('--enable-auto-tool-choice', "vLLM's flag, accepted: --tool-call-parser enables auto tool choice");
  addEngineOptions(srv).action(runServe);
}
