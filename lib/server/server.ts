// The OpenAI-compatible HTTP server (fastify) over an InferenceEngine: /v1/completions, /v1/chat/completions (JSON or
// Server-Sent Events), /v1/models, /health and /metrics, with OpenAI's error shape and vLLM's extensions.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { GenerationResult, InferenceEngine, StreamDelta } from '../engine/index.js';
import { MiniVllmError } from '../errors.js';
import type { SamplingParams } from '../sampling/params.js';
import type { TokenLogprobs } from '../sampling/sampler.js';
import { renderChatTemplate } from '../tokenizer/chat-template.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import { ServerMetrics } from './metrics.js';
import { type ChatBody, chatSchema, type CompletionBody, completionSchema, type SamplingBody } from './schemas.js';

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
}

/** An error the client caused or must see, in OpenAI's shape. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly type = 'invalid_request_error', readonly param: string | null = null,
    readonly code: string | null = null) {
    super(message);
    this.name = 'ApiError';
  }
}

function errorBody(e: ApiError) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

interface Choice {
  index: number;
  /** The first of its prompt's n choices (which counts the prompt's tokens in the metrics). */
  first: boolean;
  ids: number[];
  params: SamplingParams;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export class OpenAIServer {
  readonly app: FastifyInstance;
  readonly engine: InferenceEngine;
  readonly modelName: string;
  readonly metrics: ServerMetrics;
  private readonly apiKey: Buffer | null;
  private readonly chatTemplate: string | null;
  private readonly maxPending: number;
  private readonly controllers = new Set<AbortController>();
  private pending = 0;
  private openResponses = 0;
  private closing = false;
  private specialTokens: { bos: string; eos: string } | null = null;
  private readonly pieces = new Map<number, string>();
  private anchor: Promise<{ id: number; text: string }> | null = null;

  constructor(engine: InferenceEngine, opts: ServerOptions = {}) {
    const maxPending = opts.maxPendingRequests ?? 1024;
    if (!Number.isInteger(maxPending) || maxPending < 1) throw new RangeError(`OpenAIServer: maxPendingRequests must be a positive integer, got ${maxPending}`);
    this.engine = engine;
    this.modelName = opts.servedModelName ?? engine.options.model;
    this.apiKey = opts.apiKey ? Buffer.from(opts.apiKey) : null;
    this.chatTemplate = opts.chatTemplate ?? engine.tokenizer.chatTemplate;
    this.maxPending = maxPending;
    this.metrics = new ServerMetrics(engine, this.modelName);
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

  /** Engine requests (choices) in flight. */
  get inFlight(): number {
    return this.pending;
  }

  /**
   * Graceful shutdown: stop accepting (new requests get 503, the listener closes), let in-flight requests finish for
   * up to `graceMs`, abort the rest, and close the server. The engine is the caller's to stop.
   */
  async close(graceMs = 0): Promise<void> {
    this.closing = true;
    const closed = this.app.close();
    const deadline = Date.now() + graceMs;
    while (this.pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.controllers) c.abort();
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
        return done(new ApiError(401, 'Incorrect API key provided (send it as "Authorization: Bearer <key>")', 'authentication_error', null, 'invalid_api_key'));
      done();
    });
    app.addHook('onResponse', (req, reply, done) => {
      this.metrics.response(req.routeOptions.url ?? 'unknown', reply.statusCode);
      done();
    });
    app.setErrorHandler((err: FastifyError | ApiError | Error, req, reply) => {
      const e = this.toApiError(err, req.body);
      if (e.status >= 500) req.log.error(err);
      if (e.status === 503) void reply.header('retry-after', '1');
      void reply.status(e.status).send(errorBody(e));
    });
    app.setNotFoundHandler((req, reply) => {
      void reply.status(404).send(errorBody(new ApiError(404, `no route ${req.method} ${req.url}`, 'not_found_error', null, 'not_found')));
    });

    app.get('/health', (_req, reply) => reply.send({}));
    app.get('/metrics', async (_req, reply) => reply.type(this.metrics.contentType).send(await this.metrics.text()));
    app.get('/v1/models', (_req, reply) => reply.send({
      object: 'list',
      data: [{
        id: this.modelName, object: 'model', created: nowSeconds(), owned_by: 'mini-vllm', root: this.engine.options.model, parent: null,
        max_model_len: this.engine.options.maxModelLen,
      }],
    }));
    app.post('/v1/completions', { schema: { body: completionSchema } }, (req, reply) => this.completions(req, reply));
    app.post('/v1/chat/completions', { schema: { body: chatSchema } }, (req, reply) => this.chat(req, reply));
  }

  private toApiError(err: unknown, body?: unknown): ApiError {
    if (err instanceof ApiError) return err;
    const e = err as FastifyError & { validation?: Array<{ instancePath: string; message?: string; params?: Record<string, unknown> }> };
    if (e.validation && e.validation.length > 0) {
      const v = e.validation[0]!;
      const path = v.instancePath.replace(/^\//, '').split('/').filter(Boolean);
      const missing = typeof v.params?.['missingProperty'] === 'string' ? v.params['missingProperty'] : null;
      const param = missing ?? (path.join('.') || null);
      let got: unknown = body;
      for (const k of path) got = got !== null && typeof got === 'object' ? (got as Record<string, unknown>)[k] : undefined;
      const message = missing !== null ? `${missing} is required`
        : `${param ?? 'the body'} ${v.message ?? 'is invalid'}, got ${describeJson(got)}`;
      return new ApiError(400, message, 'invalid_request_error', param, missing !== null ? 'missing_required_parameter' : 'invalid_value');
    }
    if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e instanceof SyntaxError) return new ApiError(400, `the body is not valid JSON: ${e.message}`, 'invalid_request_error', null, 'invalid_json');
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return new ApiError(e.statusCode, e.message, 'invalid_request_error', null, e.code ?? null);
    // Checks inside the engine (sampling params, prompt ids) are the client's errors too.
    if (err instanceof RangeError || err instanceof TypeError) return new ApiError(400, err.message);
    if (err instanceof MiniVllmError && err.code === 'ERR_UNSUPPORTED') return new ApiError(400, err.message, 'invalid_request_error', null, 'unsupported');
    return new ApiError(500, `internal error: ${(err as Error)?.message ?? String(err)}`, 'internal_error');
  }

  private checkModel(body: SamplingBody): void {
    if (body.model !== undefined && body.model !== this.modelName)
      throw new ApiError(400, `The model \`${body.model}\` does not exist; this server serves \`${this.modelName}\``, 'invalid_request_error', 'model', 'model_not_found');
  }

  private samplingParams(body: SamplingBody, maxTokens: number, logprobs: number | null): SamplingParams {
    const stop = body.stop === undefined || body.stop === null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
    const p: SamplingParams = { maxTokens, stop, temperature: body.temperature ?? 1 };
    if (body.top_p !== undefined && body.top_p !== null) p.topP = body.top_p;
    if (body.top_k !== undefined && body.top_k !== null) p.topK = body.top_k < 0 ? 0 : body.top_k;
    if (body.min_p !== undefined && body.min_p !== null) p.minP = body.min_p;
    if (body.presence_penalty !== undefined && body.presence_penalty !== null) p.presencePenalty = body.presence_penalty;
    if (body.frequency_penalty !== undefined && body.frequency_penalty !== null) p.frequencyPenalty = body.frequency_penalty;
    if (body.repetition_penalty !== undefined && body.repetition_penalty !== null) p.repetitionPenalty = body.repetition_penalty;
    if (body.stop_token_ids) p.stopTokenIds = body.stop_token_ids;
    if (body.ignore_eos) p.ignoreEos = true;
    if (body.seed !== undefined && body.seed !== null) p.seed = body.seed;
    if (logprobs !== null) p.logprobs = logprobs;
    return p;
  }

  /** The choices of a request: n per prompt, each prompt checked against the context. Choice j gets seed + j. */
  private choices(prompts: number[][], body: SamplingBody, maxTokens: number | null, logprobs: number | null): Choice[] {
    const n = body.n ?? 1;
    const limit = this.engine.options.maxModelLen;
    const out: Choice[] = [];
    prompts.forEach((ids, promptIndex) => {
      const want = maxTokens ?? limit - ids.length;
      if (ids.length + Math.max(want, 1) > limit) {
        throw new ApiError(400, `This model's maximum context length is ${limit} tokens. However, you requested ${ids.length + Math.max(want, 1)} tokens `
          + `(${ids.length} in the prompt, ${Math.max(want, 1)} for the completion). Please reduce the length of the prompt or completion.`,
        'invalid_request_error', maxTokens === null ? 'messages' : 'max_tokens', 'context_length_exceeded');
      }
      const base = this.samplingParams(body, want, logprobs);
      for (let j = 0; j < n; ++j) {
        const params = typeof base.seed !== 'number' || j === 0 ? base : { ...base, seed: base.seed + j };
        out.push({ index: promptIndex * n + j, first: j === 0, ids, params });
      }
    });
    return out;
  }

  private admit(count: number): void {
    if (this.closing) throw new ApiError(503, 'the server is shutting down', 'server_unavailable', null, 'shutting_down');
    if (this.pending + count > this.maxPending)
      throw new ApiError(503, `the server is overloaded: ${this.pending} requests in flight, at most ${this.maxPending}; retry later`, 'server_overloaded', null, 'overloaded');
  }

  /** A token's text as it reads inside a text (with its leading space), decoded after a fixed anchor token. */
  private async tokenText(id: number): Promise<string> {
    let s = this.pieces.get(id);
    if (s === undefined) {
      const tok = this.engine.tokenizer;
      this.anchor ??= (async () => {
        const ids = await tok.encode('a', { addSpecialTokens: false });
        const a = ids.at(-1) ?? 0;
        return { id: a, text: await tok.decode([a], { skipSpecialTokens: false }) };
      })();
      const anchor = await this.anchor;
      const both = await tok.decode([anchor.id, id], { skipSpecialTokens: false });
      s = both.startsWith(anchor.text) ? both.slice(anchor.text.length) : await tok.decode([id], { skipSpecialTokens: false });
      this.pieces.set(id, s);
    }
    return s;
  }

  // ---- /v1/completions ----

  private async completions(req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const body = req.body as CompletionBody;
    this.checkModel(body);
    if (body.echo) throw new ApiError(400, 'echo is not supported', 'invalid_request_error', 'echo', 'unsupported');
    if (body.suffix) throw new ApiError(400, 'suffix is not supported', 'invalid_request_error', 'suffix', 'unsupported');
    if (body.best_of !== undefined && body.best_of !== null && body.best_of !== (body.n ?? 1))
      throw new ApiError(400, 'best_of other than n is not supported', 'invalid_request_error', 'best_of', 'unsupported');
    const raw = body.prompt;
    const list: Array<string | number[]> = typeof raw === 'string' ? [raw] : typeof raw[0] === 'number' ? [raw as number[]] : (raw as Array<string | number[]>);
    const V = this.engine.config.vocabSize;
    const prompts = await Promise.all(list.map(async (p, i) => {
      if (typeof p !== 'string') {
        const bad = p.find((t) => t >= V);
        if (bad !== undefined) throw new ApiError(400, `prompt token id ${bad} is outside the vocabulary [0, ${V})`, 'invalid_request_error', 'prompt', 'invalid_value');
        return p;
      }
      const ids = await this.engine.tokenizer.encode(p);
      if (ids.length === 0) throw new ApiError(400, `prompt ${i} encodes to no tokens`, 'invalid_request_error', 'prompt', 'invalid_value');
      return ids;
    }));
    const choices = this.choices(prompts, body, body.max_tokens ?? 16, body.logprobs ?? null);
    const id = `cmpl-${randomUUID().replace(/-/g, '')}`;
    const created = nowSeconds();
    const wantLogprobs = body.logprobs !== undefined && body.logprobs !== null;
    if (body.stream) {
      return this.streamChoices(reply, choices, prompts, !!body.stream_options?.include_usage, id, created, 'text_completion',
        async (c, d) => {
          // One chunk per token step, even where the text is held back (as vLLM streams), so clients can time tokens.
          if (d.tokenIds.length === 0 && d.finishReason === null) return null;
          return { index: c.index, text: d.text, logprobs: wantLogprobs ? await this.completionLogprobs(d.logprobs, d.tokenIds, 0) : null, finish_reason: d.finishReason, stop_reason: d.stopReason };
        });
    }
    const results = await this.runChoices(reply, choices);
    return {
      id, object: 'text_completion', created, model: this.modelName,
      choices: await Promise.all(results.map(async (r, k) => ({
        index: choices[k]!.index, text: r.text, logprobs: wantLogprobs ? await this.completionLogprobs(r.logprobs, r.tokenIds, 0) : null,
        finish_reason: r.finishReason, stop_reason: r.stopReason,
      }))),
      usage: usage(prompts, results),
    };
  }

  private async completionLogprobs(lps: TokenLogprobs[] | null, ids: number[], offset: number) {
    const tokens: string[] = [], tokenLogprobs: number[] = [], top: Array<Record<string, number>> = [], textOffset: number[] = [];
    let at = offset;
    for (let i = 0; i < ids.length; ++i) {
      const lp = lps?.[i];
      const text = await this.tokenText(ids[i]!);
      tokens.push(text);
      tokenLogprobs.push(lp?.logprob ?? NaN);
      const alternatives: Record<string, number> = {};
      for (const t of lp?.top ?? []) alternatives[await this.tokenText(t.token)] = t.logprob;
      if (lp) alternatives[text] ??= lp.logprob;
      top.push(alternatives);
      textOffset.push(at);
      at += text.length;
    }
    return { tokens, token_logprobs: tokenLogprobs, top_logprobs: top, text_offset: textOffset };
  }

  // ---- /v1/chat/completions ----

  private async chat(req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const body = req.body as ChatBody;
    this.checkModel(body);
    const messages: ChatMessage[] = body.messages.map((m, i) => {
      let content = '';
      if (typeof m.content === 'string') content = m.content;
      else if (Array.isArray(m.content)) {
        for (const part of m.content) {
          if (part.type !== 'text' || typeof part.text !== 'string')
            throw new ApiError(400, `messages[${i}].content: only text parts are supported, got type "${part.type}"`, 'invalid_request_error', `messages.${i}.content`, 'unsupported');
          content += part.text;
        }
      }
      return { role: m.role, content };
    });
    if (this.chatTemplate === null) throw new ApiError(400, 'this model has no chat template; start the server with --chat-template, or use /v1/completions', 'invalid_request_error', 'messages', 'no_chat_template');
    const special = await this.special();
    let text: string;
    try {
      text = renderChatTemplate(this.chatTemplate, messages, { bosToken: special.bos, eosToken: special.eos, addGenerationPrompt: true });
    } catch (e) {
      throw new ApiError(400, `the chat template failed on these messages: ${(e as Error).message}`, 'invalid_request_error', 'messages', 'invalid_value');
    }
    // The template writes the special tokens itself (as vLLM encodes chat prompts).
    const ids = await this.engine.tokenizer.encode(text, { addSpecialTokens: false });
    if (ids.length === 0) throw new ApiError(400, 'the messages render to an empty prompt', 'invalid_request_error', 'messages', 'invalid_value');
    const topLogprobs = body.logprobs ? body.top_logprobs ?? 0 : null;
    if (!body.logprobs && body.top_logprobs) throw new ApiError(400, 'top_logprobs needs logprobs: true', 'invalid_request_error', 'top_logprobs', 'invalid_value');
    const choices = this.choices([ids], body, body.max_completion_tokens ?? body.max_tokens ?? null, topLogprobs);
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const created = nowSeconds();
    if (body.stream) {
      return this.streamChoices(reply, choices, [ids], !!body.stream_options?.include_usage, id, created, 'chat.completion.chunk',
        async (c, d, first) => {
          if (!first && d.tokenIds.length === 0 && d.finishReason === null) return null;
          return {
            index: c.index, delta: first ? { role: 'assistant', content: d.text } : d.text === '' && d.finishReason !== null ? {} : { content: d.text },
            logprobs: topLogprobs !== null ? { content: await this.chatLogprobs(d.logprobs, d.tokenIds) } : null,
            finish_reason: d.finishReason, stop_reason: d.stopReason,
          };
        });
    }
    const results = await this.runChoices(reply, choices);
    return {
      id, object: 'chat.completion', created, model: this.modelName,
      choices: await Promise.all(results.map(async (r, k) => ({
        index: choices[k]!.index, message: { role: 'assistant', content: r.text },
        logprobs: topLogprobs !== null ? { content: await this.chatLogprobs(r.logprobs, r.tokenIds) } : null,
        finish_reason: r.finishReason, stop_reason: r.stopReason,
      }))),
      usage: usage([ids], results),
    };
  }

  private async chatLogprobs(lps: TokenLogprobs[] | null, ids: number[]) {
    const entry = async (token: number, logprob: number) => {
      const text = await this.tokenText(token);
      return { token: text, logprob, bytes: [...Buffer.from(text, 'utf8')] };
    };
    return Promise.all(ids.map(async (t, i) => {
      const lp = lps?.[i];
      return { ...(await entry(t, lp?.logprob ?? NaN)), top_logprobs: await Promise.all((lp?.top ?? []).map((x) => entry(x.token, x.logprob))) };
    }));
  }

  private async special(): Promise<{ bos: string; eos: string }> {
    if (this.specialTokens === null) {
      const tok = this.engine.tokenizer;
      const name = async (id: number | null | undefined) => (id === null || id === undefined ? '' : tok.decode([id], { skipSpecialTokens: false }));
      this.specialTokens = { bos: await name(tok.bosTokenId), eos: await name(tok.eosTokenIds[0]) };
    }
    return this.specialTokens;
  }

  // ---- running choices ----

  /** Aborts the request's choices if the client goes away before the response is written. */
  private watch(reply: FastifyReply): AbortController {
    const controller = new AbortController();
    this.controllers.add(controller);
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
      this.controllers.delete(controller);
    });
    return controller;
  }

  private async runChoices(reply: FastifyReply, choices: Choice[]): Promise<GenerationResult[]> {
    this.admit(choices.length);
    const controller = this.watch(reply);
    this.pending += choices.length;
    try {
      const results = await Promise.all(choices.map(async (c) => {
        try {
          const r = await this.engine.generate(c.ids, c.params, { signal: controller.signal });
          this.metrics.finished(r, c.first);
          return r;
        } finally {
          --this.pending;
        }
      }));
      return results;
    } catch (e) {
      controller.abort(); // one choice failed: the others are not wanted
      throw e;
    } finally {
      this.controllers.delete(controller);
    }
  }

  private async streamChoices(reply: FastifyReply, choices: Choice[], prompts: number[][], includeUsage: boolean, id: string, created: number,
    object: string, chunk: (c: Choice, d: StreamDelta, first: boolean) => Promise<Record<string, unknown> | null>): Promise<void> {
    this.admit(choices.length);
    const controller = this.watch(reply);
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (data: unknown) => {
      if (!raw.destroyed) raw.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    };
    this.pending += choices.length;
    const results: GenerationResult[] = [];
    let failure: Error | null = null;
    await Promise.all(choices.map(async (c) => {
      try {
        const stream = this.engine.stream(c.ids, c.params, { signal: controller.signal });
        let first = true;
        for await (const d of stream) {
          const choice = await chunk(c, d, first);
          if (choice !== null) {
            send({ id, object, created, model: this.modelName, choices: [choice], usage: null });
            first = false;
          }
        }
        const r = await stream.result;
        results[c.index] = r;
        this.metrics.finished(r, c.first);
      } catch (e) {
        failure ??= e as Error;
        controller.abort();
      } finally {
        --this.pending;
      }
    }));
    this.controllers.delete(controller);
    if (failure !== null) {
      const e = this.toApiError(failure);
      send({ error: errorBody(e).error });
    } else if (includeUsage) {
      send({ id, object, created, model: this.modelName, choices: [], usage: usage(prompts, results) });
    }
    send('[DONE]');
    raw.end();
  }
}

function describeJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function usage(prompts: number[][], results: GenerationResult[]) {
  const prompt = prompts.reduce((s, p) => s + p.length, 0);
  const completion = results.reduce((s, r) => s + (r?.tokenIds.length ?? 0), 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
