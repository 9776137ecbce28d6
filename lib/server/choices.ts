// Running a request's choices on the engine: admission (503 when shutting down or past the bound on requests in
// flight), aborting them when the client goes away, and answering with every result (JSON) or chunk by chunk (SSE).
import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { GenerationResult, InferenceEngine } from '../engine/index.js';
import { ApiError, errorBody, toApiError } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import { type Choice, usage } from './params.js';
import type { SamplingBody } from './schemas.js';
import { openEventStream } from './sse.js';

/** What a choice's answer is made of: a whole result (JSON), or one delta of a stream. */
export type ChoiceOutput = Pick<GenerationResult, 'text' | 'tokenIds' | 'logprobs'>;

/**
 * A choice's fields besides its index and finish reasons (its text or message, and logprobs), from a whole result, or
 * from one delta of a stream (then null sends no chunk for that delta).
 */
export type ChoiceContent = (
  out: ChoiceOutput,
  delta: { first: boolean; final: boolean } | null,
  /** The choice's index (a stream's deltas of one choice share state through it). */
  index: number,
) => Promise<Record<string, unknown> | null>;

/** Each route's ids and object types: the JSON answer's, and a streamed chunk's. */
const KINDS = {
  completion: { idPrefix: 'cmpl', object: 'text_completion', chunkObject: 'text_completion' },
  chat: { idPrefix: 'chatcmpl', object: 'chat.completion', chunkObject: 'chat.completion.chunk' },
};

export class ChoiceRunner {
  /** Engine requests (choices) in flight. */
  pending = 0;
  /** Set by close(): new requests get 503. */
  closing = false;
  private readonly controllers = new Set<AbortController>();

  constructor(
    private readonly engine: InferenceEngine,
    private readonly modelName: string,
    private readonly metrics: ServerMetrics,
    private readonly maxPending: number,
  ) {}

  /** Aborts every request in flight (shutdown, after the grace period). */
  abortAll(): void {
    for (const c of this.controllers) c.abort();
  }

  /** Runs the choices and answers: with every result as JSON, or streamed chunk by chunk as Server-Sent Events. */
  async respond(
    reply: FastifyReply,
    body: SamplingBody,
    kind: keyof typeof KINDS,
    [choices, prompts]: [Choice[], number[][]],
    content: ChoiceContent,
  ): Promise<unknown> {
    const shape = { ...KINDS[kind], content, includeUsage: !!body.stream_options?.include_usage };
    const id = `${shape.idPrefix}-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(Date.now() / 1000);
    const frame = { id, created, model: this.modelName };
    // params and constraints checked first: a bad one is a 400, never an error inside a stream; the engine then takes
    // them resolved (its own check finds the constraint already parsed)
    for (const c of choices) c.params = await this.engine.checkParams(c.params);
    if (body.stream) return this.stream(reply, choices, prompts, frame, shape);
    const results = await this.run(reply, choices);
    // the content may answer a finish_reason of its own (tool calls)
    const answers = results.map(async (r, k) => ({
      index: choices[k]!.index,
      finish_reason: r.finishReason,
      stop_reason: r.stopReason,
      ...(await shape.content(r, null, choices[k]!.index)),
    }));
    return { ...frame, object: shape.object, choices: await Promise.all(answers), usage: usage(prompts, results) };
  }

  /** Runs the choices to the end; their results in order. One failing aborts the others. */
  private async run(reply: FastifyReply, choices: Choice[]): Promise<GenerationResult[]> {
    this.admit(choices.length);
    const controller = this.watch(reply);
    this.pending += choices.length;
    try {
      return await Promise.all(
        choices.map(async (c) => {
          try {
            const r = await this.engine.generate(c.ids, c.params, { signal: controller.signal });
            this.metrics.finished(r, c.first);
            return r;
          } finally {
            --this.pending;
          }
        }),
      );
    } catch (e) {
      controller.abort(); // one choice failed: the others are not wanted
      throw e;
    } finally {
      this.controllers.delete(controller);
    }
  }

  /** Streams the choices as Server-Sent Events: a chunk per token step, a usage chunk if asked, then [DONE]. */
  private async stream(
    reply: FastifyReply,
    choices: Choice[],
    prompts: number[][],
    frame: { id: string; created: number; model: string },
    shape: { chunkObject: string; includeUsage: boolean; content: ChoiceContent },
  ): Promise<void> {
    this.admit(choices.length);
    const controller = this.watch(reply);
    const events = openEventStream(reply);
    const head = { ...frame, object: shape.chunkObject };
    this.pending += choices.length;
    const results: GenerationResult[] = [];
    let failure: Error | null = null;
    await Promise.all(
      choices.map(async (c) => {
        try {
          const stream = this.engine.stream(c.ids, c.params, { signal: controller.signal });
          let first = true;
          for await (const d of stream) {
            const content = await shape.content(d, { first, final: d.finishReason !== null }, c.index);
            if (content === null) continue;
            const choice = { index: c.index, finish_reason: d.finishReason, stop_reason: d.stopReason, ...content };
            events.send({ ...head, choices: [choice], usage: null });
            first = false;
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
      }),
    );
    this.controllers.delete(controller);
    if (failure !== null) events.send({ error: errorBody(toApiError(failure)).error });
    else if (shape.includeUsage) events.send({ ...head, choices: [], usage: usage(prompts, results) });
    events.send('[DONE]');
    events.end();
  }

  private admit(count: number): void {
    if (this.closing)
      throw new ApiError(503, 'the server is shutting down', 'server_unavailable', null, 'shutting_down');
    if (!this.engine.started) {
      const loading = this.engine.coreStates().some((c) => c.state === 'starting');
      throw new ApiError(
        503,
        loading ? 'the model is still loading; retry later' : 'no engine core is serving',
        'server_unavailable',
        null,
        loading ? 'model_loading' : 'engine_unavailable',
      );
    }
    if (this.pending + count > this.maxPending)
      throw new ApiError(
        503,
        `the server is overloaded: ${this.pending} requests in flight, at most ${this.maxPending}; retry later`,
        'server_overloaded',
        null,
        'overloaded',
      );
  }

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
}
