// POST /v1/chat/completions: messages rendered by the chat template (which writes the special tokens itself, as vLLM
// encodes chat prompts), n choices, logprobs in the chat shape, tool calls (tools.ts), JSON or streamed.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GenerationResult } from '../engine/index.js';
import { promptTokenIds } from '../engine/prompt.js';
import { renderChatTemplate } from '../tokenizer/chat-template.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import type { ServerContext } from './context.js';
import { ApiError, asParam } from './errors.js';
import { chatLogprobs } from './logprobs.js';
import { checkModel, choicesOf } from './params.js';
import type { ChatBody } from './schemas.js';
import { callId, planTools, streamableContent, type ToolCallParser, toolAnswer, type ToolPlan } from './tools.js';

/**
 * The messages as the template reads them: text content (only text parts are supported), an assistant's tool calls
 * with their arguments as objects (templates write them with tojson), a tool message's call id.
 */
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
    const msg: ChatMessage = { role: m.role, content };
    if (m.name !== undefined) msg.name = m.name;
    if (m.tool_call_id) msg.tool_call_id = m.tool_call_id;
    if (m.tool_calls)
      msg.tool_calls = m.tool_calls.map((c, j) => {
        let args: unknown;
        try {
          args = JSON.parse(c.function.arguments);
        } catch (e) {
          throw new ApiError(
            400,
            `messages[${i}].tool_calls[${j}].function.arguments is not JSON: ${(e as Error).message}`,
            'invalid_request_error',
            `messages.${i}.tool_calls.${j}.function.arguments`,
            'invalid_value',
          );
        }
        return { id: c.id, type: 'function', function: { name: c.function.name, arguments: args } };
      });
    return msg;
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
  const plan = planTools(body.tools, body.tool_choice, body.parallel_tool_calls, ctx.toolCallParser);
  const special = await ctx.specialTokens();
  let text: string;
  try {
    text = renderChatTemplate(ctx.chatTemplate, messages, {
      bosToken: special.bos,
      eosToken: special.eos,
      addGenerationPrompt: true,
      tools: body.tools && body.tools.length > 0 ? body.tools : null,
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
  if (plan) for (const c of choices) c.params = { ...c.params, ...plan.constraint };
  const calls = plan && plan.mode !== 'none' ? new ToolStreams(plan, ctx.toolCallParser) : null;
  return ctx.choices.respond(reply, body, 'chat', [choices, [ids]], async (out, delta, index) => {
    if (delta && !delta.first && out.tokenIds.length === 0 && !delta.final) return null;
    const logprobs =
      topLogprobs !== null ? { content: await chatLogprobs(ctx.texts, out.logprobs, out.tokenIds) } : null;
    if (calls) return calls.content(out as GenerationResult, delta, index, logprobs);
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

/**
 * A tool request's answers: the message with its tool_calls (finish_reason "tool_calls"; a named function's answer
 * keeps "stop", as OpenAI's), or streamed: content while no call can be starting, the calls once the text is whole
 * (a named function's arguments as they come).
 */
class ToolStreams {
  private readonly texts = new Map<number, { text: string; sent: number; id: string | null }>();

  constructor(
    private readonly plan: ToolPlan,
    private readonly parser: ToolCallParser | null,
  ) {}

  content(
    out: GenerationResult,
    delta: { first: boolean; final: boolean } | null,
    index: number,
    logprobs: unknown,
  ): Record<string, unknown> {
    const { plan, parser } = this;
    if (!delta) {
      const { content, calls } = toolAnswer(out.text, plan, parser);
      const message = { role: 'assistant', content, ...(calls.length > 0 ? { tool_calls: calls } : {}) };
      const finish = calls.length > 0 && plan.mode !== 'named' && out.finishReason === 'stop' ? 'tool_calls' : null;
      return { message, logprobs, ...(finish ? { finish_reason: finish } : {}) };
    }
    const s = this.texts.get(index) ?? { text: '', sent: 0, id: null };
    this.texts.set(index, s);
    s.text += out.text;
    const d: Record<string, unknown> = delta.first ? { role: 'assistant' } : {};
    if (plan.mode === 'named') {
      // the output is the arguments: stream them as they come
      const call: Record<string, unknown> = { index: 0, function: { arguments: out.text } };
      if (s.id === null) {
        s.id = callId();
        Object.assign(call, { id: s.id, type: 'function', function: { name: plan.name, arguments: out.text } });
      }
      return { delta: { ...d, tool_calls: [call] }, logprobs };
    }
    const upTo = delta.final ? s.text.length : streamableContent(s.text, plan, parser);
    if (!delta.final) {
      if (upTo > s.sent) d['content'] = s.text.slice(s.sent, upTo);
      s.sent = Math.max(s.sent, upTo);
      return { delta: d, logprobs };
    }
    const { content, calls } = toolAnswer(s.text, plan, parser);
    const rest = (content ?? '').slice(s.sent);
    if (rest !== '') d['content'] = rest;
    if (calls.length > 0) d['tool_calls'] = calls.map((c, k) => ({ index: k, ...c }));
    this.texts.delete(index);
    const finish = calls.length > 0 && out.finishReason === 'stop' ? 'tool_calls' : null;
    return { delta: d, logprobs, ...(finish ? { finish_reason: finish } : {}) };
  }
}
