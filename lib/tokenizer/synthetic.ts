// The tokenizer of a dummy model: a SentencePiece vocabulary of the model's size, so encoding, decoding and
// streaming run as they would on a real model. Ids 0-2 <unk> <s> </s>, 3-258 the bytes, then the printable ASCII
// characters, then made-up words (" ka", " bel", ...) that a random model's tokens decode to.
import { SentencePieceTokenizer } from './sentencepiece.js';

const CONSONANTS = 'bdfgklmnprstvz';
const VOWELS = 'aeiou';

function word(i: number): string {
  let s = '';
  let n = i;
  do {
    s += CONSONANTS[n % CONSONANTS.length]! + VOWELS[Math.floor(n / CONSONANTS.length) % VOWELS.length]!;
    n = Math.floor(n / (CONSONANTS.length * VOWELS.length));
  } while (n > 0);
  return ` ${s}`;
}

export function syntheticTokenizer(
  vocabSize: number,
  special: { bosTokenId: number | null; eosTokenIds: number[] },
): SentencePieceTokenizer {
  const pieces = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; ++b) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let c = 32; c < 127; ++c) pieces.push(String.fromCharCode(c));
  for (let i = 0; pieces.length < vocabSize; ++i) pieces.push(word(i));
  pieces.length = vocabSize;
  const scores = Float32Array.from(pieces, (_, i) => -i);
  // Special ids from the preset (Llama 3's sit at the top of its vocabulary); they decode to nothing.
  const named = new Map<number, string>([[0, '<unk>']]);
  if (special.bosTokenId !== null) named.set(special.bosTokenId, '<s>');
  for (const e of special.eosTokenIds) if (!named.has(e)) named.set(e, '</s>');
  for (const [id, p] of named) if (id >= 3) pieces[id] = `${p}#${id}`;
  const types = Int32Array.from(pieces, (p, i) => (named.has(i) || i < 3 ? 3 : /^<0x[0-9A-F]{2}>$/.test(p) ? 6 : 1));
  return new SentencePieceTokenizer({
    pieces,
    scores,
    types,
    bosTokenId: special.bosTokenId,
    eosTokenIds: special.eosTokenIds,
    unkTokenId: 0,
    chatTemplate:
      "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '\\n' }}{% endfor %}{% if " +
      "add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
  });
}
