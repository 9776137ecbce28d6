// Broken model files give a clear error naming the file (and the tensor), never a crash or a hang: named cases for
// each kind of damage, then hundreds of truncated and bit-flipped copies of every format.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { MiniVllmError } from '../lib/index.js';
import { configToHf, loadModel, writeSafetensors } from '../lib/model/index.js';
import { syntheticTokenizer } from '../lib/tokenizer/synthetic.js';
import { prng, sharedModels, skipBecause } from './helpers.js';
import { TINY_CONFIG, writeTinyHfModel } from './tiny-models.js';

const models = sharedModels();
const SMALL = {
  ...TINY_CONFIG,
  vocabSize: 300,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 1,
  numHeads: 2,
  numKvHeads: 1,
};

/** Loads `path`; returns 'loaded' or the error, which must be one of ours and name `names` (the file). */
async function attempt(path: string, names: string): Promise<'loaded' | Error> {
  let m;
  try {
    m = await loadModel(path, { device: 'cpu', dtype: 'float32' });
  } catch (e) {
    expect(e, String(e)).to.satisfy(
      (x: unknown) => x instanceof MiniVllmError || x instanceof RangeError || x instanceof TypeError,
    );
    expect((e as Error).message, 'the error names the file').to.include(names);
    return e as Error;
  }
  m.model.dispose();
  return 'loaded';
}

function mutate(bytes: Buffer, rand: () => number, focus: number): Buffer {
  const kind = rand();
  if (kind < 0.3) return bytes.subarray(0, Math.floor(rand() * bytes.length));
  const out = Buffer.from(bytes);
  const flips = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < flips; ++i) {
    // Mostly in the header / metadata, where a flip changes meaning; sometimes anywhere.
    const at = Math.floor(rand() * (rand() < 0.8 ? Math.min(focus, out.length) : out.length));
    out[at] = out[at]! ^ (1 << Math.floor(rand() * 8));
  }
  return out;
}

describe('model loaders on broken files', function () {
  const tmp = mkdtempSync(join(tmpdir(), 'mini-vllm-fuzz-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const tok = syntheticTokenizer(300, { bosTokenId: 1, eosTokenIds: [2] }).vocabulary();
  const hf = join(tmp, 'hf');
  writeTinyHfModel(hf, { config: SMALL, pieces: [...tok.pieces], scores: tok.scores });

  describe('named damage gives an error naming the file and the tensor', function () {
    const cases: [string, (dir: string) => void, RegExp][] = [
      [
        'bad header JSON',
        (d) => {
          const b = readFileSync(join(d, 'model.safetensors'));
          b[8] = 0x78; // the header's opening '{' becomes 'x'
          writeFileSync(join(d, 'model.safetensors'), b);
        },
        /model\.safetensors: the header is not valid JSON/,
      ],
      [
        'data offsets past the end of the file',
        (d) => {
          const b = readFileSync(join(d, 'model.safetensors'));
          writeFileSync(join(d, 'model.safetensors'), b.subarray(0, b.length - 100));
        },
        /model\.safetensors: tensor "[^"]+": data_offsets \[\d+, \d+\] run past the end of the data/,
      ],
      [
        'a tensor shape that does not match the config',
        (d) => {
          writeFileSync(join(d, 'config.json'), JSON.stringify({ ...configToHf(SMALL), intermediate_size: 64 }));
        },
        /tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[48, 32\], the config needs \[64, 32\]/,
      ],
      [
        'an unknown dtype',
        (d) => {
          const b = readFileSync(join(d, 'model.safetensors'));
          const n = Number(b.readBigUInt64LE(0));
          const header = b
            .subarray(8, 8 + n)
            .toString()
            .replace('"F32"', '"F64"');
          writeFileSync(
            join(d, 'model.safetensors'),
            Buffer.concat([b.subarray(0, 8), Buffer.from(header), b.subarray(8 + n)]),
          );
        },
        /model\.safetensors: tensor "[^"]+": dtype F64|only F32, F16 and BF16/,
      ],
      [
        'a missing tensor',
        (d) => {
          writeSafetensors(join(d, 'model.safetensors'), [
            { name: 'model.norm.weight', shape: [SMALL.hiddenSize], data: new Float32Array(SMALL.hiddenSize) },
          ]);
        },
        /tensor "model\.embed_tokens\.weight" is missing/,
      ],
      [
        'a config.json that is not JSON',
        (d) => writeFileSync(join(d, 'config.json'), '{"hidden_size": 3'),
        /config\.json: cannot read the model config/,
      ],
      [
        'a config with heads that do not divide',
        (d) => writeFileSync(join(d, 'config.json'), JSON.stringify({ ...configToHf(SMALL), num_key_value_heads: 3 })),
        /config\.json: numHeads \(2\) must be a multiple of numKvHeads \(3\)/,
      ],
      [
        'a tokenizer.json that is not JSON',
        (d) => writeFileSync(join(d, 'tokenizer.json'), '{"model": '),
        /tokenizer\.json: cannot load/,
      ],
    ];
    for (const [label, damage, message] of cases) {
      it(label, async () => {
        const d = join(tmp, label.replaceAll(' ', '-'));
        mkdirSync(d);
        for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'])
          copyFileSync(join(hf, f), join(d, f));
        damage(d);
        const r = await attempt(d, d);
        expect(r).to.be.instanceOf(Error);
        expect((r as Error).message).to.match(message);
      });
    }

    it('a llama2.c header that does not match the file size, and a GGUF with an unsupported type', async function () {
      if (!models) skipBecause(this, '../shared/models/stories260K is absent');
      const bin = readFileSync(join(models, 'stories260K', 'stories260K.bin'));
      const d = join(tmp, 'l2c');
      mkdirSync(d);
      copyFileSync(join(models, 'stories260K', 'tok512.bin'), join(d, 'tok512.bin'));
      const b = Buffer.from(bin);
      b.writeInt32LE(128, 0); // dim 64 -> 128
      writeFileSync(join(d, 'm.bin'), b);
      expect(((await attempt(join(d, 'm.bin'), 'm.bin')) as Error).message).to.match(
        /needs \d+ bytes, the file has 1056540/,
      );
      const g = Buffer.from(readFileSync(join(models, 'stories260K', 'stories260K.gguf')));
      const at = g.indexOf('token_embd.weight') + 'token_embd.weight'.length + 4 + 16; // name, n_dims, 2 dims -> type
      g.writeUInt32LE(10, at); // Q2_K
      writeFileSync(join(d, 'q.gguf'), g);
      expect(((await attempt(join(d, 'q.gguf'), 'q.gguf')) as Error).message).to.match(
        /tensor "token_embd\.weight" has type Q2_K; supported are/,
      );
    });
  });

  describe('hundreds of truncated and bit-flipped copies', function () {
    const N = 200;
    const run = async (
      label: string,
      original: Buffer,
      focus: number,
      place: (bytes: Buffer, i: number) => { path: string; names: string },
    ) => {
      const rand = prng(label.length * 7919);
      let failed = 0;
      for (let i = 0; i < N; ++i) {
        const { path, names } = place(mutate(original, rand, focus), i);
        if ((await attempt(path, names)) !== 'loaded') failed++;
      }
      expect(failed, 'most damage is caught').to.be.greaterThan(N / 4);
    };

    const fromShared = (file: string, focus: number, companion?: string) =>
      async function (this: Mocha.Context) {
        if (!models) skipBecause(this, '../shared/models/stories260K is absent');
        const d = join(tmp, `fuzz-${file}`);
        mkdirSync(d);
        if (companion) copyFileSync(join(models, 'stories260K', companion), join(d, companion));
        const original = readFileSync(join(models, 'stories260K', file));
        await run(file, original, focus, (bytes, i) => {
          const path = join(d, `${i}-${file}`);
          writeFileSync(path, bytes);
          return { path, names: path };
        });
      };

    it(`${N} copies of stories260K.bin`, fromShared('stories260K.bin', 28, 'tok512.bin'));
    it(`${N} copies of stories260K.gguf`, fromShared('stories260K.gguf', 12000));
    it(`${N} copies of tok512.bin (beside an intact stories260K.bin)`, async function () {
      if (!models) skipBecause(this, '../shared/models/stories260K is absent');
      const d = join(tmp, 'fuzz-tok');
      const original = readFileSync(join(models, 'stories260K', 'tok512.bin'));
      await run('tok512.bin', original, original.length, (bytes, i) => {
        const sub = join(d, String(i));
        mkdirSync(sub, { recursive: true });
        copyFileSync(join(models, 'stories260K', 'stories260K.bin'), join(sub, 'm.bin'));
        writeFileSync(join(sub, 'tok512.bin'), bytes);
        return { path: join(sub, 'm.bin'), names: sub };
      });
    });
    for (const file of ['model.safetensors', 'config.json', 'tokenizer.json']) {
      it(`${N} copies of a Hugging Face ${file}`, async () => {
        const original = readFileSync(join(hf, file));
        const focus = file === 'model.safetensors' ? 8 + Number(original.readBigUInt64LE(0)) : original.length;
        await run(file, original, focus, (bytes, i) => {
          const d = join(tmp, `fuzz-${file}-${i}`);
          mkdirSync(d);
          for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'])
            if (f !== file) copyFileSync(join(hf, f), join(d, f));
          writeFileSync(join(d, file), bytes);
          return { path: d, names: d };
        });
      });
    }
  });
});
