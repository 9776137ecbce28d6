// The OpenAI-compatible HTTP server (fastify) over an InferenceEngine: the app and its lifecycle. Routes:
// /v1/completions (completions.ts) and /v1/chat/completions (chat.ts), JSON or Server-Sent Events (choices.ts,
// sse.ts); /v1/models, the probes (/health, /ready, /live) and /metrics here. Errors answer in OpenAI's shape
// (errors.ts), with vLLM's extensions.
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { InferenceEngine } from '../engine/index.js';
import { chat } from './chat.js';
import { ChoiceRunner } from './choices.js';
import { completions } from './completions.js';
import type { ServerContext } from './context.js';
import { ApiError, errorBody, toApiError } from './errors.js';
import { TokenTexts } from './logprobs.js';
import { ServerMetrics } from './metrics.js';
import { chatSchema, completionSchema } from './schemas.js';
import { TOOL_CALL_PARSERS, type ToolCallParser } from './tools.js';

export { ApiError } from './errors.js';

export interface ServerOptions {
  /** The name clients send as `model` (default: the engine's model string). */
  servedModelName?: string;
  /** When set, every /v1 route needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string | null;
  /** A Jinja chat template to use instead of the model's. */
  chatTemplate?: string | null;
  /** Engine requests (choices) in flight beyond which new requests get 503. Default 1024. */
  maxPendingRequests?: number;
  /** fastify's request log (pino, to stderr). Default false. */
  logRequests?: boolean;
  /** How "auto" tool choice finds calls in the text: hermes, llama3_json or mistral (vLLM's --tool-call-parser). */
  toolCallParser?: ToolCallParser | null;
}

export class OpenAIServer implements ServerContext {
  readonly app: FastifyInstance;
  readonly engine: InferenceEngine;
  readonly modelName: string;
  readonly metrics: ServerMetrics;
  readonly chatTemplate: string | null;
  readonly choices: ChoiceRunner;
  readonly texts: TokenTexts;
  readonly toolCallParser: ToolCallParser | null;
  private readonly apiKey: Buffer | null;
  private openResponses = 0;
  private special: Promise<{ bos: string; eos: string }> | null = null;

  constructor(engine: InferenceEngine, opts: ServerOptions = {}) {
    const maxPending = opts.maxPendingRequests ?? 1024;
    if (!Number.isInteger(maxPending) || maxPending < 1)
      throw new RangeError(`OpenAIServer: maxPendingRequests must be a positive integer, got ${maxPending}`);
    this.engine = engine;
    this.modelName = opts.servedModelName ?? engine.options.model;
    this.apiKey = opts.apiKey ? Buffer.from(opts.apiKey) : null;
    this.chatTemplate = opts.chatTemplate ?? engine.tokenizer.chatTemplate;
    const parser = opts.toolCallParser ?? null;
    if (parser !== null && !TOOL_CALL_PARSERS.includes(parser))
      throw new RangeError(
        `OpenAIServer: toolCallParser must be one of ${TOOL_CALL_PARSERS.join(', ')}, got ${String(parser)}`,
      );
    this.toolCallParser = parser;
    this.metrics = new ServerMetrics(engine, this.modelName);
    this.choices = new ChoiceRunner(engine, this.modelName, this.metrics, maxPending);
    this.texts = new TokenTexts(engine.tokenizer);
    this.app = Fastify({
      logger: opts.logRequests ? { level: 'info', stream: process.stderr } : false,
      bodyLimit: 32 * 2 ** 20,
      // Strict types: no coercion of "5" to 5, no defaults filled in, unknown fields left alone.
      ajv: { customOptions: { coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: false } },
    });
    this.routes();
  }

  /** Listens; resolves to the address (port 0 picks a free one). */
  async listen(host = '127.0.0.1', port = 8000): Promise<{ host: string; port: number; url: string }> {
    await this.app.listen({ host, port });
    const addr = this.app.server.address();
    const real = typeof addr === 'object' && addr !== null ? addr.port : port;
    return { host, port: real, url: `http://${host.includes(':') ? `[${host}]` : host}:${real}` };
  }

  /** The engine cores' states, and the server's in one word: loading, ok, degraded (a core down), draining, down. */
  health(): {
    serving: boolean;
    body: { status: string; cores: { rank: number; state: string; error: string | null }[] };
  } {
    const cores = this.engine.coreStates().map(({ rank, state, error }) => ({ rank, state, error }));
    const serving = cores.some((c) => c.state === 'ready');
    let status: string;
    if (serving)
      status = this.choices.closing ? 'draining' : cores.every((c) => c.state === 'ready') ? 'ok' : 'degraded';
    else status = cores.some((c) => c.state === 'starting') ? 'loading' : 'down';
    return { serving, body: { status, cores } };
  }

  /** Engine requests (choices) in flight. */
  get inFlight(): number {
    return this.choices.pending;
  }

  /** The tokenizer's BOS and first EOS as text (the chat template writes them). */
  specialTokens(): Promise<{ bos: string; eos: string }> {
    this.special ??= (async () => {
      const tok = this.engine.tokenizer;
      const name = async (id: number | null | undefined) =>
        id === null || id === undefined ? '' : tok.decode([id], { skipSpecialTokens: false });
      return { bos: await name(tok.bosTokenId), eos: await name(tok.eosTokenIds[0]) };
    })();
    return this.special;
  }

  /**
   * Graceful shutdown: stop accepting (new requests get 503, the listener closes), let in-flight requests finish for
   * up to `graceMs`, abort the rest, and close the server. The engine is the caller's to stop.
   */
  async close(graceMs = 0): Promise<void> {
    this.choices.closing = true;
    const closed = this.app.close();
    const deadline = Date.now() + graceMs;
    while (this.choices.pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.choices.abortAll();
    // Once every response has been written, no connection carries anything we owe: close them all, or keep-alive
    // (and connections a client opened ahead without a request yet) would hold close() open for their timeouts.
    const settle = Date.now() + 2000;
    while (this.openResponses > 0 && Date.now() < settle) await new Promise((r) => setTimeout(r, 10));
    this.app.server.closeAllConnections();
    await closed;
  }

  private routes(): void {
    const app = this.app;
    app.addHook('onRequest', (req, reply, done) => {
      ++this.openResponses;
      reply.raw.once('close', () => --this.openResponses); // finished, or the connection went away
      if (this.apiKey === null || !req.url.startsWith('/v1')) return done();
      const header = req.headers.authorization ?? '';
      const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
      if (given.length !== this.apiKey.length || !timingSafeEqual(given, this.apiKey))
        return done(
          new ApiError(
            401,
            'Incorrect API key provided (send it as "Authorization: Bearer <key>")',
            'authentication_error',
            null,
            'invalid_api_key',
          ),
        );
      done();
    });
    app.addHook('onResponse', (req, reply, done) => {
      this.metrics.response(req.routeOptions.url ?? 'unknown', reply.statusCode);
      done();
    });
    app.setErrorHandler((err: FastifyError | ApiError | Error, req, reply) => {
      const e = toApiError(err, req.body);
      if (e.status >= 500) req.log.error(err);
      if (e.status === 503) void reply.header('retry-after', '1');
      void reply.status(e.status).send(errorBody(e));
    });
    app.setNotFoundHandler((req, reply) => {
      void reply
        .status(404)
        .send(errorBody(new ApiError(404, `no route ${req.method} ${req.url}`, 'not_found_error', null, 'not_found')));
    });

    // Probes. /health: the engine (200 while a core serves, even draining; 503 while loading or when every core is
    // down), with each core's state. /ready (readiness): a core serves and the server is not draining. /live
    // (liveness): the process answers and some core is serving or loading; with every core dead only a restart helps.
    app.get('/health', (_req, reply) => {
      const h = this.health();
      return reply.status(h.serving ? 200 : 503).send(h.body);
    });
    app.get('/ready', (_req, reply) => {
      const h = this.health();
      return reply.status(h.serving && !this.choices.closing ? 200 : 503).send(h.body);
    });
    app.get('/live', (_req, reply) => {
      const h = this.health();
      return reply.status(h.body.status === 'down' ? 503 : 200).send(h.body);
    });
    app.get('/metrics', async (_req, reply) => reply.type(this.metrics.contentType).send(await this.metrics.text()));
    app.get('/v1/models', (_req, reply) =>
      reply.send({
        object: 'list',
        data: [
          {
            id: this.modelName,
            object: 'model',
            created: Math.floor(Date.now() / 1000),
            owned_by: 'mini-vllm',
            root: this.engine.options.model,
            parent: null,
            max_model_len: this.engine.options.maxModelLen,
          },
        ],
      }),
    );
    app.post('/v1/completions', { schema: { body: completionSchema } }, (req, reply) => completions(this, req, reply));
    app.post('/v1/chat/completions', { schema: { body: chatSchema } }, (req, reply) => chat(this, req, reply));
  }
}
