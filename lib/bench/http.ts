// The serving benchmark's HTTP client: one streamed /v1/completions request to a running `mini-vllm serve` (or any
// OpenAI-compatible server that streams one chunk per token step, as vLLM does), timed as vLLM's benchmark times
// it: arrival when the request is sent, a token at each chunk, the end at the last one. A last chunk with no text
// and only a finish reason, one more than the tokens the usage counts (llama-server sends one), is not a token.
import { createParser } from 'eventsource-parser';
import type { RequestRecord } from './metrics.js';

export interface HttpTarget {
  baseUrl: string;
  apiKey?: string;
  model: string;
}

interface Chunk {
  choices?: Array<{ text?: string; finish_reason?: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  error?: { message: string };
}

/** The served model's name and context length (GET /v1/models). */
export async function describeServer(
  t: Omit<HttpTarget, 'model'>,
): Promise<{ model: string; maxModelLen: number | null }> {
  const r = await fetch(`${t.baseUrl}/v1/models`, { headers: t.apiKey ? { authorization: `Bearer ${t.apiKey}` } : {} });
  if (!r.ok) throw new Error(`${t.baseUrl}/v1/models answered ${r.status}: ${await r.text()}`);
  const body = (await r.json()) as { data?: Array<{ id: string; max_model_len?: number }> };
  const m = body.data?.[0];
  if (!m) throw new Error(`${t.baseUrl}/v1/models lists no model`);
  return { model: m.id, maxModelLen: m.max_model_len ?? null };
}

/**
 * fetch(), whose bare "fetch failed" gets the reason (a reset connection, a refused one) and the URL added. A request
 * sent on a kept-alive connection the server closed at that moment (llama-server closes idle ones after 5 s) fails
 * with "other side closed" before any response: it is sent once more on a new connection, its arrival kept from the
 * first try, so the time lost counts in its latency.
 */
async function fetchWithCause(url: string, init: RequestInit): Promise<Response> {
  for (let attempt = 1; ; ++attempt) {
    try {
      return await fetch(url, init);
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      if (attempt === 1 && cause?.code === 'UND_ERR_SOCKET') continue;
      const why = cause ? ` (${[cause.code, cause.message].filter(Boolean).join(': ')})` : '';
      throw new Error(`POST ${url}: ${(e as Error).message}${why}`, { cause: e });
    }
  }
}

/** Sends one streamed completion of `prompt` (token ids) and times its tokens (performance.now() ms). */
export async function timedCompletion(
  t: HttpTarget,
  prompt: number[],
  params: { maxTokens: number; seed: number; ignoreEos: boolean },
): Promise<RequestRecord> {
  const arrival = performance.now();
  const res = await fetchWithCause(`${t.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(t.apiKey ? { authorization: `Bearer ${t.apiKey}` } : {}) },
    body: JSON.stringify({
      model: t.model,
      prompt,
      max_tokens: params.maxTokens,
      temperature: 1,
      top_p: 1,
      seed: params.seed,
      ignore_eos: params.ignoreEos,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok || !res.body) throw new Error(`${t.baseUrl}/v1/completions answered ${res.status}: ${await res.text()}`);
  const tokens: number[] = [];
  // Written from the parser's callback (a holder, so the checks below are not narrowed away).
  const got: { usage: Chunk['usage']; failure: string | null; lastEmptyFinish: boolean } = {
    usage: null,
    failure: null,
    lastEmptyFinish: false,
  };
  const parser = createParser({
    onEvent(e) {
      if (e.data === '[DONE]') return;
      const now = performance.now();
      const c = JSON.parse(e.data) as Chunk;
      if (c.error) got.failure = c.error.message;
      if (c.choices && c.choices.length > 0) {
        tokens.push(now);
        const choice = c.choices[0]!;
        got.lastEmptyFinish = !choice.text && choice.finish_reason != null;
      }
      if (c.usage) got.usage = c.usage;
    },
  });
  const decoder = new TextDecoder();
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>)
    parser.feed(decoder.decode(part, { stream: true }));
  if (got.failure !== null) throw new Error(`the server failed the request: ${got.failure}`);
  const u = got.usage;
  if (!u) throw new Error('the stream carried no usage chunk (stream_options.include_usage)');
  // llama-server ends with a chunk of no text that carries only the finish reason: not a token
  if (tokens.length === u.completion_tokens + 1 && got.lastEmptyFinish) tokens.pop();
  if (u.completion_tokens !== tokens.length)
    throw new Error(
      `the server streamed ${tokens.length} chunks for ${u.completion_tokens} tokens: it does not stream one chunk ` +
        `per token, so tokens cannot be timed`,
    );
  return {
    promptTokens: u.prompt_tokens,
    outputTokens: tokens.length,
    arrival,
    firstToken: tokens[0] ?? arrival,
    tokens,
    finish: tokens.at(-1) ?? arrival,
  };
}
