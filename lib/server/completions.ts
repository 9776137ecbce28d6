// POST /v1/completions: prompts as text or token ids (one or a batch), n choices each, logprobs in the completions
// shape, JSON or streamed.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { promptTokenIds } from '../engine/prompt.js';
import type { ServerContext } from './context.js';
import { ApiError, asParam } from './errors.js';
import { completionLogprobs } from './logprobs.js';
import { checkModel, choicesOf } from './params.js';
import type { CompletionBody } from './schemas.js';

export async function completions(ctx: ServerContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = req.body as CompletionBody;
  checkModel(body, ctx.modelName);
  if (body.echo) throw new ApiError(400, 'echo is not supported', 'invalid_request_error', 'echo', 'unsupported');
  if (body.suffix) throw new ApiError(400, 'suffix is not supported', 'invalid_request_error', 'suffix', 'unsupported');
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== (body.n ?? 1))
    throw new ApiError(400, 'best_of other than n is not supported', 'invalid_request_error', 'best_of', 'unsupported');
  const raw = body.prompt;
  const list: Array<string | number[]> =
    typeof raw === 'string'
      ? [raw]
      : typeof raw[0] === 'number'
        ? [raw as number[]]
        : (raw as Array<string | number[]>);
  const { tokenizer, config, options } = ctx.engine;
  const prompts = await Promise.all(
    list.map((p, i) =>
      asParam('prompt', () =>
        promptTokenIds(p, tokenizer, config.vocabSize, list.length === 1 ? 'prompt' : `prompt[${i}]`),
      ),
    ),
  );
  const choices = choicesOf(prompts, body, body.max_tokens ?? 16, body.logprobs ?? null, options.maxModelLen);
  const wantLogprobs = body.logprobs !== undefined && body.logprobs !== null;
  // One chunk per token step, even where the text is held back (as vLLM streams), so clients can time tokens.
  return ctx.choices.respond(reply, body, 'completion', [choices, prompts], async (out, delta) => {
    if (delta && out.tokenIds.length === 0 && !delta.final) return null;
    const logprobs = wantLogprobs ? await completionLogprobs(ctx.texts, out.logprobs, out.tokenIds, 0) : null;
    return { text: out.text, logprobs };
  });
}
