// Chat templates (Jinja, as in tokenizer_config.json or GGUF metadata), rendered with @huggingface/jinja.
import { Template } from '@huggingface/jinja';
import { MiniVllmError } from '../errors.js';
import type { ChatMessage } from './tokenizer.js';

export interface ChatTemplateContext {
  bosToken: string;
  eosToken: string;
  addGenerationPrompt: boolean;
  /** OpenAI's tools ({type: "function", function: {...}} each), as templates expect them in `tools`. */
  tools?: unknown[] | null;
}

const cache = new Map<string, Template>();

export function renderChatTemplate(template: string | null, messages: ChatMessage[], ctx: ChatTemplateContext): string {
  if (template === null)
    throw new MiniVllmError('this model has no chat template; pass a plain prompt', 'ERR_UNSUPPORTED');
  if (!Array.isArray(messages) || !messages.every((m) => typeof m?.role === 'string' && typeof m?.content === 'string'))
    throw new TypeError('applyChatTemplate: messages must be an array of {role: string, content: string}');
  let t = cache.get(template);
  if (!t) {
    t = new Template(template);
    cache.set(template, t);
  }
  try {
    return t.render({
      messages,
      bos_token: ctx.bosToken,
      eos_token: ctx.eosToken,
      add_generation_prompt: ctx.addGenerationPrompt,
      ...(ctx.tools ? { tools: ctx.tools } : {}),
    });
  } catch (e) {
    // a template's raise_exception (Gemma's: no system role, roles must alternate) refuses the conversation: the
    // caller's error (an HTTP 400), not the engine's
    throw new TypeError(`applyChatTemplate: the model's chat template refused the messages: ${(e as Error).message}`);
  }
}
