// The quantised-file fuzz of test/quant-model.test.ts, counted: 1000 truncated or bit-flipped copies each of a Q4_K_M,
// a Q8_0 and a Q4_0 GGUF (quantize), and how each load ended: loaded, refused with our error naming the file, or else.
//   node bench/scripts/quant-fuzz.mjs   (after npm run build; needs ../shared/models beside the repository)
import { Buffer } from 'node:buffer';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MiniVllmError } from '../../dist/lib/index.js';
import { loadModel } from '../../dist/lib/model/index.js';
import { openGguf } from '../../dist/lib/formats/gguf.js';
import { quantizeModel } from '../../dist/lib/model/quantize-model.js';
import { syntheticTokenizer } from '../../dist/lib/tokenizer/synthetic.js';
import { QUANT_TINY_CONFIG, writeTinyHfModel } from '../../dist/test/tiny-models.js';
import { scriptArgs } from './args.mjs';

scriptArgs(`usage: node bench/scripts/quant-fuzz.mjs   (after npm run build)
  1000 truncated or bit-flipped copies each of a Q4_K_M, Q8_0 and Q4_0 GGUF, and how each load ended.`);
const tmp = mkdtempSync(join(tmpdir(), 'qfuzz-'));
const src = fileURLToPath(import.meta.resolve('../../../shared/models/stories260K/stories260K.bin'));
let seed = 20;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const counts = {};
// a tiny model with rows of 256 (so Q4_K_M holds Q4_K and Q6_K), as test/quant-model.test.ts writes it
const hf = join(tmp, 'hf');
const tok = syntheticTokenizer(QUANT_TINY_CONFIG.vocabSize, { bosTokenId: 1, eosTokenIds: [2] }).vocabulary();
writeTinyHfModel(hf, { config: QUANT_TINY_CONFIG, seed: 7, pieces: [...tok.pieces], scores: tok.scores });
for (const type of ['q4_k_m', 'q8_0', 'q4_0']) {
  const file = join(tmp, `${type}.gguf`);
  quantizeModel(type === 'q4_k_m' ? hf : src, file, type);
  const original = readFileSync(file);
  const g = openGguf(file);
  const first = Math.min(...[...g.tensors.values()].map((t) => t.offset));
  g.file.close();
  const c = { mutations: 0, loaded: 0, refused: 0, other: 0 };
  for (let i = 0; i < 1000; ++i) {
    const b = Buffer.from(original);
    let bytes = b;
    if (rand() < 0.25) bytes = b.subarray(0, Math.floor(rand() * b.length));
    else
      for (let k = 0; k < 1 + Math.floor(rand() * 4); ++k) {
        const r = rand();
        const at = Math.floor(
          r < 0.5 ? rand() * first : r < 0.8 ? first + rand() * (b.length - first) : rand() * b.length,
        );
        b[at] ^= 1 << Math.floor(rand() * 8);
      }
    const p = join(tmp, `m${i}.gguf`);
    writeFileSync(p, bytes);
    c.mutations++;
    try {
      const m = await loadModel(p, {
        device: 'cpu',
        ...(type === 'q4_k_m' ? { tokenizer: join(hf, 'tokenizer.json') } : {}),
      });
      m.model.dispose();
      c.loaded++;
    } catch (e) {
      if ((e instanceof MiniVllmError || e instanceof RangeError || e instanceof TypeError) && e.message.includes(p))
        c.refused++;
      else {
        c.other++;
        console.log('OTHER', e);
      }
    }
  }
  counts[type] = c;
}
rmSync(tmp, { recursive: true, force: true });
console.log(JSON.stringify(counts, null, 1));
