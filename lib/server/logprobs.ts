// Logprobs in the two shapes OpenAI's APIs return them (completions: parallel arrays with text offsets; chat: one entry
// per token with its bytes and alternatives), with each token's text as it reads inside a text.
import type { TokenLogprobs } from '../sampling/sampler.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** Each token's text as it reads inside a text (with its leading space), decoded once after a fixed anchor token. */
export class TokenTexts {
  private readonly pieces = new Map<number, string>();
  private anchor: Promise<{ id: number; text: string }> | null = null;

  constructor(private readonly tokenizer: Tokenizer) {}

  async text(id: number): Promise<string> {
    let s = this.pieces.get(id);
    if (s === undefined) {
      const tok = this.tokenizer;
      this.anchor ??= (async () => {
        const ids = await tok.encode('a', { addSpecialTokens: false });
        const a = ids.at(-1) ?? 0;
        return { id: a, text: await tok.decode([a], { skipSpecialTokens: false }) };
      })();
      const anchor = await this.anchor;
      const both = await tok.decode([anchor.id, id], { skipSpecialTokens: false });
      s = both.startsWith(anchor.text)
        ? both.slice(anchor.text.length)
        : await tok.decode([id], { skipSpecialTokens: false });
      this.pieces.set(id, s);
    }
    return s;
  }
}

/** /v1/completions' logprobs: tokens, token_logprobs, top_logprobs, text_offset (from `offset`). */
export async function completionLogprobs(
  texts: TokenTexts,
  lps: TokenLogprobs[] | null,
  ids: number[],
  offset: number,
) {
  const tokens: string[] = [],
    tokenLogprobs: number[] = [],
    top: Array<Record<string, number>> = [],
    textOffset: number[] = [];
  let at = offset;
  for (let i = 0; i < ids.length; ++i) {
    const lp = lps?.[i];
    const text = await texts.text(ids[i]!);
    tokens.push(text);
    tokenLogprobs.push(lp?.logprob ?? NaN);
    const alternatives: Record<string, number> = {};
    for (const t of lp?.top ?? []) alternatives[await texts.text(t.token)] = t.logprob;
    if (lp) alternatives[text] ??= lp.logprob;
    top.push(alternatives);
    textOffset.push(at);
    at += text.length;
  }
  return { tokens, token_logprobs: tokenLogprobs, top_logprobs: top, text_offset: textOffset };
}

/** /v1/chat/completions' logprobs content: per token its text, logprob, UTF-8 bytes and alternatives. */
export async function chatLogprobs(texts: TokenTexts, lps: TokenLogprobs[] | null, ids: number[]) {
  const entry = async (token: number, logprob: number) => {
    const text = await texts.text(token);
    return { token: text, logprob, bytes: [...Buffer.from(text, 'utf8')] };
  };
  return Promise.all(
    ids.map(async (t, i) => {
      const lp = lps?.[i];
      return {
        ...(await entry(t, lp?.logprob ?? NaN)),
        top_logprobs: await Promise.all((lp?.top ?? []).map((x) => entry(x.token, x.logprob))),
      };
    }),
  );
}
