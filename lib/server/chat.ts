// POST /v1/chat/completions: messages rendered by the chat template (which writes the special tokens itself, as vLLM
// encodes chat prompts), n choices, logprobs in the chat shape, JSON or streamed.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { promptTokenIds } from '../engine/prompt.js';
import { renderChatTemplate } from '../tokenizer/chat-template.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import type { ServerContext } from './context.js';
import { ApiError, asParam } from './errors.js';
import { chatLogprobs } from './logprobs.js';
import { checkModel, choicesOf } from './params.js';
import type { ChatBody } from './schemas.js';

/** The messages as text: only text content parts are supported. */
function messagesOf(body: ChatBody): ChatMessage[] {
  return body.messages.map((m, i) => {
    let content = '';
    if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content)) {
      for (const part of m.content) {
        if (part.type !== 'text' || typeof part.text !== 'string')
          throw new ApiError(
            400,
            `messages[${i}].content: only text parts are supported, got type "${part.type}"`,
            'invalid_request_error',
            `messages.${i}.content`,
            'unsupported',
          );
        content += part.text;
      }
    }
    return { role: m.role, content };
  });
}

export async function chat(ctx: ServerContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = req.body as ChatBody;
  checkModel(body, ctx.modelName);
  const messages = messagesOf(body);
  if (ctx.chatTemplate === null)
    throw new ApiError(
      400,
      'this model has no chat template; start the server with --chat-template, or use /v1/completions',
      'invalid_request_error',
      'messages',
      'no_chat_template',
    );
  const special = await ctx.specialTokens();
  let text: string;
  try {
    text = renderChatTemplate(ctx.chatTemplate, messages, {
      bosToken: special.bos,
      eosToken: special.eos,
      addGenerationPrompt: true,
    });
  } catch (e) {
    throw new ApiError(
      400,
      `the chat template failed on these messages: ${(e as Error).message}`,
      'invalid_request_error',
      'messages',
      'invalid_value',
    );
  }
  const { tokenizer, config, options } = ctx.engine;
  const ids = await asParam('messages', () =>
    promptTokenIds(text, tokenizer, config.vocabSize, 'the rendered messages', false),
  );
  const topLogprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
  if (!body.logprobs && body.top_logprobs)
    throw new ApiError(
      400,
      'top_logprobs needs logprobs: true',
      'invalid_request_error',
      'top_logprobs',
      'invalid_value',
    );
  const choices = choicesOf(
    [ids],
    body,
    body.max_completion_tokens ?? body.max_tokens ?? null,
    topLogprobs,
    options.maxModelLen,
  );
  return ctx.choices.respond(reply, body, 'chat', [choices, [ids]], async (out, delta) => {
    if (delta && !delta.first && out.tokenIds.length === 0 && !delta.final) return null;
    const logprobs =
      topLogprobs !== null ? { content: await chatLogprobs(ctx.texts, out.logprobs, out.tokenIds) } : null;
    if (!delta) return { message: { role: 'assistant', content: out.text }, logprobs };
    // The first chunk names the role; the last, if it carries no text, is empty.
    const text = delta.first
      ? { role: 'assistant', content: out.text }
      : out.text === '' && delta.final
        ? {}
        : { content: out.text };
    return { delta: text, logprobs };
  });
}
