// A small byte-level BPE vocabulary trained here (GPT-2's byte-to-character map, pairs merged by frequency), for
// GGUF files whose tokenizer is `gpt2` (test/gguf-bpe.test.ts and test/fixtures/families): no real model's vocabulary
// is needed to check that our reading of such a file tokenizes as llama.cpp does.

/** GPT-2's map of each byte to a printable character: printable Latin-1 bytes stay, the others move past 255. */
export function byteChars(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep(b) ? b : next++));
}

const CORPUS = [
  'The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs on and on.',
  "It's a naïve café in the old town: we'll meet there, they're late, I'm early, you've seen it.",
  'Numbers 12345 and 2024-12-07 and 3.14159; prices $42.50, 100% of 7 items.',
  'Hello world! Hello there, world. Say hello to the world again and again.',
  '日本語のテキスト and emoji 😀 and symbols — « » © ™ as the text goes on.',
  'def main():\n    return print("hello")\n\n\tindented\ttabs\r\nwindows lines',
].join('\n');

/** GPT-2's split pattern, written for JavaScript (the training split; the tokenizer's own split is the file's). */
const SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * A vocabulary of the 256 byte characters, then `merges` merged tokens, learned on a fixed corpus: each round merges
 * the most frequent adjacent pair (ties to the smaller pair string), skipping pairs whose merge is already a token.
 */
export function trainByteBpe(merges: number): { tokens: string[]; merges: string[] } {
  const chars = byteChars();
  const counts = new Map<string, number>();
  for (const w of CORPUS.match(SPLIT) ?? []) {
    const key = [...new TextEncoder().encode(w)].map((b) => chars[b]!).join('\u0000');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let words = [...counts].map(([k, n]) => ({ parts: k.split('\u0000'), n }));
  const tokens = [...chars];
  const have = new Set(tokens);
  const out: string[] = [];
  while (out.length < merges) {
    const pairs = new Map<string, number>();
    for (const { parts, n } of words)
      for (let i = 0; i + 1 < parts.length; ++i) {
        const merged = parts[i]! + parts[i + 1]!;
        if (!have.has(merged)) {
          const key = `${parts[i]} ${parts[i + 1]}`;
          pairs.set(key, (pairs.get(key) ?? 0) + n);
        }
      }
    if (pairs.size === 0) break;
    const [best] = [...pairs].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]!;
    const [l, r] = best.split(' ') as [string, string];
    out.push(best);
    tokens.push(l + r);
    have.add(l + r);
    words = words.map(({ parts, n }) => {
      const next: string[] = [];
      for (let i = 0; i < parts.length; ++i) {
        if (i + 1 < parts.length && parts[i] === l && parts[i + 1] === r) {
          next.push(l + r);
          ++i;
        } else next.push(parts[i]!);
      }
      return { parts: next, n };
    });
  }
  return { tokens, merges: out };
}

/** A `gpt2` GGUF vocabulary of exactly `size` tokens: bytes, merges, then the given special (control) tokens. */
export function gpt2Vocabulary(
  size: number,
  specials: string[],
): { tokens: string[]; types: number[]; merges: string[] } {
  const { tokens, merges } = trainByteBpe(size - 256 - specials.length);
  if (tokens.length + specials.length !== size)
    throw new Error(`the corpus gives only ${tokens.length - 256} merges, not ${size - 256 - specials.length}`);
  return {
    tokens: [...tokens, ...specials],
    types: [...tokens.map(() => 1), ...specials.map(() => 3)],
    merges,
  };
}
