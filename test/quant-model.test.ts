// Quantised models end to end: GGUF files written by our quantiser by llama.cpp's rules (Q8_0, Q4_0, Q4_K_M, Q5_K_M)
// load with their weights kept quantised and generate, and their logits match the float32 forward of their own
// dequantised weights; quantisation at load; the quantize command's mixes; broken quantised files.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { MiniVllmError } from '../lib/index.js';
import { generate } from '../lib/engine/index.js';
import { openGguf } from '../lib/formats/gguf.js';
import { ggufModel } from '../lib/model/gguf-model.js';
import { loadModel } from '../lib/model/index.js';
import { PackedQuantWeight } from '../lib/model/linear-weight.js';
import { isQuantType, quantRowWords } from '../lib/quant/formats.js';
import { quantizeModel, targetType, useMoreBits } from '../lib/model/quantize-model.js';
import { QuantizedTensor } from '../lib/quant/tensor.js';
import { syntheticTokenizer } from '../lib/tokenizer/synthetic.js';
import {
  describeDevices,
  expectClose,
  prefillLogits,
  prng,
  referenceWeights,
  sharedModels,
  skipBecause,
} from './helpers.js';
import { expectGemvLogits, gemvReferences } from './quant-reference.js';
import { QUANT_TINY_CONFIG, writeTinyHfModel } from './tiny-models.js';

const CONFIG = QUANT_TINY_CONFIG;
// 24 tokens in all: the prefill takes the GEMM path (more than 16 tokens), a decode batch the GEMV
const SEQS = [
  [1, 17, 250, 33, 8, 90],
  [1, 5, 6, 7],
  [1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52],
];

const tmp = mkdtempSync(join(tmpdir(), 'mini-vllm-quant-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const tok = syntheticTokenizer(CONFIG.vocabSize, { bosTokenId: 1, eosTokenIds: [2] }).vocabulary();
const hf = join(tmp, 'hf');
writeTinyHfModel(hf, { config: CONFIG, seed: 7, pieces: [...tok.pieces], scores: tok.scores });
const files: Record<string, string> = {};
// The tiny model's tokenizer.json is not a SentencePiece vocabulary, so its GGUFs carry none: loads name it.
const load = (file: string, o: Parameters<typeof loadModel>[1] = {}) =>
  loadModel(file, { tokenizer: join(hf, 'tokenizer.json'), ...o });
for (const t of ['q8_0', 'q4_0', 'q4_k_m', 'q5_k_m', 'f32'] as const) {
  files[t] = join(tmp, `${t}.gguf`);
  quantizeModel(hf, files[t], t);
}

describe('quantize: the per-tensor types of each file', () => {
  it("llama.cpp's use_more_bits: first and last eighth, every third between", () => {
    const picks = Array.from({ length: 32 }, (_, i) => i).filter((i) => useMoreBits(i, 32));
    expect(picks).to.deep.equal([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
  });

  it('Q4_K_M and Q5_K_M: attn_v / ffn_down in Q6_K where use_more_bits says, the head in Q6_K, fallbacks', () => {
    const types = (file: string) => new Map([...openGguf(file).tensors.values()].map((t) => [t.name, t.type]));
    const q4 = types(files['q4_k_m']!);
    expect(q4.get('blk.0.attn_v.weight')).to.equal('Q6_K');
    expect(q4.get('blk.1.attn_v.weight')).to.equal(useMoreBits(1, 3) ? 'Q6_K' : 'Q4_K');
    expect(q4.get('blk.1.ffn_down.weight')).to.equal(useMoreBits(1, 3) ? 'Q6_K' : 'Q4_K');
    expect(q4.get('blk.1.attn_q.weight')).to.equal('Q4_K');
    expect(q4.get('output.weight')).to.equal('Q6_K');
    expect(q4.get('token_embd.weight')).to.equal('Q4_K');
    expect(q4.get('blk.0.attn_norm.weight')).to.equal('F32');
    const q5 = types(files['q5_k_m']!);
    expect(q5.get('blk.1.attn_q.weight')).to.equal('Q5_K');
    expect(types(files['q4_0']!).get('output.weight')).to.equal('Q6_K');
    expect(new Set(types(files['q8_0']!).values())).to.deep.equal(new Set(['Q8_0', 'F32']));
    // rows that are not whole super-blocks fall back as llama.cpp's do
    expect(targetType('q4_k_m', 'blk.0.attn_q.weight', 288, 6, false)).to.equal('Q5_0');
    expect(targetType('q5_k_m', 'blk.0.attn_q.weight', 288, 6, false)).to.equal('Q5_1');
    expect(targetType('q4_k_m', 'output.weight', 288, 6, false)).to.equal('Q8_0');
    expect(targetType('q4_0', 'token_embd.weight', 256, 6, true)).to.equal('Q6_K');
    const g = openGguf(files['q4_k_m']!);
    expect(g.metadata.get('general.file_type')).to.equal(15);
    expect(g.metadata.get('general.alignment')).to.equal(32);
    g.file.close();
  });
});

describeDevices('quantised GGUF files', (device) => {
  it('f32 written from the Hugging Face model gives its logits (q/k rows permuted to GGUF pairs)', async () => {
    const a = await loadModel(hf, { device, dtype: 'float32' });
    const b = await load(files['f32']!, { device, dtype: 'float32' });
    const [la, lb] = [prefillLogits(a, SEQS), prefillLogits(b, SEQS)];
    for (let i = 0; i < SEQS.length; ++i) expectClose(lb[i]!, la[i]!, { atol: 2e-5, rtol: 1e-4 }, `seq ${i}`);
    a.model.dispose();
    b.model.dispose();
  });

  for (const t of ['q8_0', 'q4_0', 'q4_k_m', 'q5_k_m'] as const)
    it(`${t}: stays quantised; its logits are those of its dequantised weights; it generates`, async () => {
      const q = await load(files[t]!, { device, dtype: 'float32' });
      // on the CPU the Q4_0, Q8_0, Q4_K and Q6_K matrices are interleaved by 8 rows for the GEMV (the same bytes), the
      // others stay as they are (blk.1.attn_output is Q4_K in q4_k_m, Q5_K in q5_k_m)
      const o = q.model.weights.layers[1]!.o;
      const packed = { q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k_m: 'Q4_K' }[t as string];
      if (packed && device === 'cpu') expect(o).to.be.instanceOf(PackedQuantWeight).and.include({ type: packed });
      else expect(o).to.be.instanceOf(QuantizedTensor);
      // weightsBytes: the blocks (rows padded to 4 bytes) plus the float norms
      const g = openGguf(files[t]!);
      let want = 0;
      for (const info of g.tensors.values()) {
        const [rows, cols] = [info.shape[0]!, info.shape[1] ?? 1];
        want += isQuantType(info.type) ? rows * quantRowWords(info.type, cols) * 4 : rows * cols * 4;
      }
      g.file.close();
      expect(q.model.weightsBytes).to.equal(want);
      const deq = join(tmp, `${t}-${device}-dequantized.gguf`);
      quantizeModel(files[t]!, deq, 'f32');
      const f = await load(deq, { device, dtype: 'float32' });
      try {
        // 24 rows of logits: the GEMM path, x in fp32, so the same math as the float model's
        const [lq, lf] = [prefillLogits(q, SEQS, true), prefillLogits(f, SEQS, true)];
        for (let i = 0; i < lq.length; ++i) expectClose(lq[i]!, lf[i]!, { atol: 5e-5, rtol: 1e-4 }, `row ${i}`);
        // 4 tokens: the GEMV path (up to 16). On the CPU it rounds x to 8 bits per 32 values: against the float64
        // forward with that rounding (test/quant-reference.ts); on CUDA it is fp32 throughout.
        const gq = prefillLogits(q, [SEQS[1]!], true);
        if (device === 'cpu') {
          const g = openGguf(files[t]!);
          const { config, source } = ggufModel(g);
          const want = gemvReferences(config, referenceWeights(source, config.numLayers), SEQS[1]!);
          g.file.close();
          expectGemvLogits(gq, want, 'GEMV');
        } else {
          const gf = prefillLogits(f, [SEQS[1]!], true);
          gq.forEach((l, i) => expectClose(l, gf[i]!, { atol: 5e-5, rtol: 1e-4 }, `GEMV row ${i}`));
        }
        const [r] = await generate(q, [SEQS[0]!], { temperature: 0, maxTokens: 12, ignoreEos: true });
        expect(r!.tokenIds).to.have.length(12);
      } finally {
        q.model.dispose();
        f.model.dispose();
      }
    });

  it('quantization at load: the same blocks as the quantize command writes (q8_0 and q4_0)', async () => {
    for (const q of ['q8_0', 'q4_0'] as const) {
      const a = await load(files['f32']!, { device, dtype: 'float32', quantization: q });
      const b = await load(files[q]!, { device, dtype: 'float32' });
      expect(a.model.weightsBytes).to.equal(b.model.weightsBytes);
      const [la, lb] = [prefillLogits(a, SEQS), prefillLogits(b, SEQS)];
      for (let i = 0; i < SEQS.length; ++i) expectClose(la[i]!, lb[i]!, { atol: 0, rtol: 0 }, `${q} seq ${i}`);
      a.model.dispose();
      b.model.dispose();
    }
  });
});

describe('the CPU’s interleaved quantised weights (packQuantWeight)', () => {
  // a tied model: q4_0 makes its embedding, which is also the classifier, Q6_K (llama.cpp's choice)
  const tiedHf = join(tmp, 'hf-tied');
  writeTinyHfModel(tiedHf, {
    config: { ...CONFIG, tieWordEmbeddings: true },
    seed: 9,
    pieces: [...tok.pieces],
    scores: tok.scores,
  });
  const tied = join(tmp, 'tied-q4_0.gguf');
  quantizeModel(tiedHf, tied, 'q4_0');
  const plainLoad = async () => {
    process.env['MINI_VLLM_CPU_PACK'] = '0';
    try {
      return await load(tied, { device: 'cpu', dtype: 'float32' });
    } finally {
      delete process.env['MINI_VLLM_CPU_PACK'];
    }
  };

  it('a tied Q6_K embedding and the Q4_0 layers interleaved give the plain layout’s logits', async () => {
    const [p, q] = [await load(tied, { device: 'cpu', dtype: 'float32' }), await plainLoad()];
    try {
      const w = p.model.weights;
      expect(w.embedding).to.be.instanceOf(PackedQuantWeight).and.include({ type: 'Q6_K' });
      expect(w.lmHead).to.equal(w.embedding);
      expect(w.layers[0]!.qkv).to.be.instanceOf(PackedQuantWeight).and.include({ type: 'Q4_0' });
      expect(q.model.weights.embedding).to.be.instanceOf(QuantizedTensor);
      expect(p.model.weightsBytes).to.equal(q.model.weightsBytes);
      // 24 tokens: the embedding rows and the GEMM's dequantised panels are the same values: the same logits, exactly
      const [lp, lq] = [prefillLogits(p, SEQS, true), prefillLogits(q, SEQS, true)];
      for (let i = 0; i < lp.length; ++i) expectClose(lp[i]!, lq[i]!, { atol: 0, rtol: 0 }, `GEMM row ${i}`);
      // 4 tokens: the integer GEMVs, summed in another order
      const [gp, gq] = [prefillLogits(p, [SEQS[1]!], true), prefillLogits(q, [SEQS[1]!], true)];
      gp.forEach((l, i) => expectClose(l, gq[i]!, { atol: 1e-4, rtol: 1e-4 }, `GEMV row ${i}`));
    } finally {
      p.model.dispose();
      q.model.dispose();
    }
  });
});

describe('quantised real models', function () {
  const models = sharedModels();
  it('stories260K in Q8_0 and Q4_K_M (rows of 64: Q5_0 / Q8_0): the float forward of its values', async function () {
    if (!models) skipBecause(this, '../shared/models/stories260K is absent');
    for (const t of ['q8_0', 'q4_k_m'] as const) {
      const q = join(tmp, `s260-${t}.gguf`);
      const f = join(tmp, `s260-${t}-f32.gguf`);
      quantizeModel(join(models, 'stories260K', 'stories260K.bin'), q, t);
      quantizeModel(q, f, 'f32');
      const [a, b] = [await loadModel(q, { device: 'cpu' }), await loadModel(f, { device: 'cpu' })];
      // 20 tokens, every row's logits: the GEMM path (x in fp32)
      const seqs = [[1, 403, 407, 261, 378, 395, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 313]];
      const [la, lb] = [prefillLogits(a, seqs, true), prefillLogits(b, seqs, true)];
      for (let i = 0; i < la.length; ++i) expectClose(la[i]!, lb[i]!, { atol: 5e-5, rtol: 1e-4 }, `${t} row ${i}`);
      a.model.dispose();
      b.model.dispose();
    }
  });
});

describe('broken quantised files give a clear error naming the file and the tensor', function () {
  const original = readFileSync(files['q4_k_m']!);
  const g = openGguf(files['q4_k_m']!);
  const info = g.tensors.get('blk.0.attn_q.weight')!;
  g.file.close();
  const typeAt = (name: string) => original.indexOf(name) + name.length + 4 + 16;
  const attempt = async (bytes: Buffer, label: string): Promise<Error | 'loaded'> => {
    const path = join(tmp, `${label}.gguf`);
    writeFileSync(path, bytes);
    try {
      const m = await load(path, { device: 'cpu' });
      m.model.dispose();
      return 'loaded';
    } catch (e) {
      expect(e, String(e)).to.satisfy(
        (x: unknown) => x instanceof MiniVllmError || x instanceof RangeError || x instanceof TypeError,
      );
      expect((e as Error).message).to.include(path);
      return e as Error;
    }
  };
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['truncated', (b) => b.subarray(0, b.length - 1000), /lies past the end of the file/],
    [
      'a row length that is not a multiple of the block',
      (b) => {
        b.writeBigUInt64LE(100n, typeAt('token_embd.weight') - 16); // a Q4_K tensor's ne[0] = 100
        return b;
      },
      /rows of 100 values are not a multiple of Q4_K's block of 256/,
    ],
    [
      'a byte size that does not match its type and shape',
      (b) => {
        b.writeUInt32LE(8, typeAt('blk.0.attn_q.weight')); // Q4_K -> Q8_0: more bytes than its slot
        return b;
      },
      /tensor "blk\.0\.attn_q\.weight" \(Q8_0 \[256, 256\], \d+ bytes\) runs into tensor/,
    ],
    [
      'a non-finite block scale',
      (b) => {
        b.writeUInt16LE(0x7c00, info.offset + 3 * 144); // block 3's d = +infinity
        return b;
      },
      /tensor "model\.layers\.0\.self_attn\.q_proj\.weight" \(Q4_K\): the scale of row 3 block 0 is not finite/,
    ],
    [
      'a context length past what the RoPE table holds (found by the fuzz)',
      (b) => {
        const key = 'llama.context_length';
        b.writeUInt32LE(536871040, b.indexOf(key) + key.length + 4);
        return b;
      },
      /maxPositionEmbeddings 536871040 is above 2\^24/,
    ],
    ['an unsupported type', (b) => (b.writeUInt32LE(11, typeAt('blk.2.ffn_up.weight')), b), /has type Q3_K/],
  ];
  for (const [label, damage, message] of cases)
    it(label, async () => {
      const r = await attempt(damage(Buffer.from(original)), label.replaceAll(' ', '-'));
      expect(r).to.be.instanceOf(Error);
      expect((r as Error).message).to.match(message);
    });

  it('400 truncated and bit-flipped copies of a Q4_K_M file: never a crash, most caught', async () => {
    const rand = prng(20);
    let caught = 0;
    for (let i = 0; i < 400; ++i) {
      const b = Buffer.from(original);
      let bytes: Buffer;
      if (rand() < 0.25) bytes = b.subarray(0, Math.floor(rand() * b.length));
      else {
        for (let k = 0; k < 1 + Math.floor(rand() * 4); ++k) {
          // the header, or the first bytes of a block (its scales), or anywhere
          const r = rand();
          const at = Math.floor(
            r < 0.5
              ? rand() * info.offset
              : r < 0.8
                ? info.offset + 144 * Math.floor(rand() * 256) + rand() * 4
                : rand() * b.length,
          );
          b[at] = b[at]! ^ (1 << Math.floor(rand() * 8));
        }
        bytes = b;
      }
      if ((await attempt(bytes, `fuzz-${i}`)) !== 'loaded') caught++;
    }
    expect(caught, 'most damage is caught').to.be.greaterThan(100);
  });
});
