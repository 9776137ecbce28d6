// stories260K against llama2.c's run.c: greedy tokens and printed text byte for byte, and the first-step logits,
// from the llama2.c checkpoint (both header versions) and from the GGUF copy.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Device, FloatDType } from '../lib/index.js';
import { generate } from '../lib/engine/offline.js';
import { allocateKvCache, disposeKvCache } from '../lib/engine/kv-budget.js';
import { type LoadedModel, loadModel } from '../lib/model/index.js';
import { openLlama2c } from '../lib/model/llama2c.js';
import { llamaForward } from '../lib/reference/index.js';
import {
  decodeLogits,
  describeDevices,
  expectClose,
  forwardLogits,
  prefillLogits,
  referenceWeights,
  sharedModels,
  skipBecause,
} from './helpers.js';
import { CHAT_TEMPLATE, rewriteGguf } from './tiny-models.js';

interface GoldenCase {
  prompt: string;
  steps: number;
  expected_stdout: string;
  prompt_ids: number[];
  generated_ids: number[];
  per_step_top1: [number, number][];
}
interface Golden {
  cases: GoldenCase[];
  bos_pos0: { logits: number[] };
}

const models = sharedModels();
const dir = models ? join(models, 'stories260K') : '';
const golden = models ? (JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden) : null;

/** Writes the checkpoint again in llama2.c's versioned layout (magic "ak42", version 1). */
function writeVersion1(from: string, to: string): void {
  const { config: c, source } = openLlama2c(from);
  const header = Buffer.alloc(256);
  header.writeUInt32LE(0x616b3432, 0);
  header.writeInt32LE(1, 4);
  [
    c.hiddenSize,
    c.intermediateSize,
    c.numLayers,
    c.numHeads,
    c.numKvHeads,
    c.vocabSize,
    c.maxPositionEmbeddings,
  ].forEach((v, i) => header.writeInt32LE(v, 8 + 4 * i));
  header.writeUInt8(1, 36);
  const read = (name: string) => {
    const rows = source.shape(name)[0]!;
    const t = source.read(name, 0, rows);
    return Buffer.from(t.buffer, t.byteOffset, t.byteLength);
  };
  const layers = (w: string) => Array.from({ length: c.numLayers }, (_, l) => read(`model.layers.${l}.${w}.weight`));
  writeFileSync(
    to,
    Buffer.concat([
      header,
      ...layers('input_layernorm'),
      ...layers('post_attention_layernorm'),
      read('model.norm.weight'),
      read('model.embed_tokens.weight'),
      ...[
        'self_attn.q_proj',
        'self_attn.k_proj',
        'self_attn.v_proj',
        'self_attn.o_proj',
        'mlp.gate_proj',
        'mlp.down_proj',
        'mlp.up_proj',
      ].flatMap(layers),
    ]),
  );
  source.close?.();
}

/** Runs the model one token at a time (decode steps through the paged cache), returning each step's logits. */
function stepByStep(
  m: LoadedModel,
  tokens: (step: number, prev: Float32Array | null) => number,
  steps: number,
  onLogits: (l: Float32Array) => void,
): void {
  const { model } = m;
  const kv = allocateKvCache(model, Math.ceil(steps / 16), 16);
  const table = [Array.from({ length: kv.numBlocks }, (_, i) => i)];
  let logits: Float32Array | null = null;
  try {
    for (let pos = 0; pos < steps; ++pos) {
      const step = { tokenIds: [tokens(pos, logits)], positions: [pos], slotMapping: [pos], logitsIndices: [0] };
      logits = forwardLogits(model, kv, { ...step, queryStartLoc: [0, 1], seqLens: [pos + 1], blockTables: table });
      onLogits(logits);
    }
  } finally {
    disposeKvCache(kv);
  }
}

function argmax(l: Float32Array): number {
  let best = 0;
  for (let i = 1; i < l.length; ++i) if (l[i]! > l[best]!) best = i;
  return best;
}

/** Greedy decoding by hand through model.forward: each step's top-1 (id, logit). */
function greedySteps(m: LoadedModel, prompt: number[], steps: number): [number, number][] {
  const out: [number, number][] = [];
  stepByStep(
    m,
    (pos, prev) => (pos < prompt.length ? prompt[pos]! : argmax(prev!)),
    steps,
    (l) => out.push([argmax(l), l[argmax(l)]!]),
  );
  return out;
}

/** The logits after BOS at position 0, as golden.json stores them. */
const firstStepLogits = (m: LoadedModel): Float32Array => decodeLogits(m.model, [1])[0]!;

/** Where ../shared/models is absent: one skipped test saying so. */
function skippedWithoutModels(): void {
  it('the run.c goldens', function () {
    skipBecause(this, '../shared/models/stories260K is absent');
  });
}

describe('stories260K against llama2.c run.c', function () {
  if (!models || !golden) return skippedWithoutModels();
  const tmp = mkdtempSync(join(tmpdir(), 'mini-vllm-golden-'));
  const v1 = join(tmp, 'stories260K-v1.bin');
  writeFileSync(join(tmp, 'tok512.bin'), readFileSync(join(dir, 'tok512.bin')));
  writeVersion1(join(dir, 'stories260K.bin'), v1);
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const sources: [string, () => string][] = [
    ['stories260K.bin + tok512.bin', () => join(dir, 'stories260K.bin')],
    ['stories260K.gguf', () => join(dir, 'stories260K.gguf')],
    ['the checkpoint rewritten in llama2.c version 1 layout', () => v1],
  ];

  describeDevices('float32 greedy', (device: Device) => {
    for (const [label, path] of sources) {
      describe(label, function () {
        let m: LoadedModel;
        before(async () => {
          m = await loadModel(path(), { device, dtype: 'float32' });
        });
        after(() => m?.model.dispose());

        it('tokenizes the prompts as run.c does', async () => {
          for (const c of golden.cases) expect(await m.tokenizer.encode(c.prompt)).to.deep.equal(c.prompt_ids);
        });

        it('gives the first-step logits within 1e-4 of run.c', () => {
          expectClose(firstStepLogits(m), Float32Array.from(golden.bos_pos0.logits), { atol: 1e-4, rtol: 0 });
        });

        for (const c of golden.cases) {
          it(`prints run.c's exact output for prompt ${JSON.stringify(c.prompt)} (${c.steps} steps)`, async () => {
            const prompt = await m.tokenizer.encode(c.prompt);
            let streamed = '';
            const [r] = await generate(
              m,
              c.prompt,
              { temperature: 0, maxTokens: c.steps + 1 - prompt.length },
              {
                onText: (_, d) => {
                  streamed += d;
                },
              },
            );
            expect(r!.tokenIds).to.deep.equal(c.generated_ids);
            expect(streamed).to.equal(r!.text);
            // run.c echoes the prompt (decoded from its tokens), then the completion, then a newline.
            expect((await m.tokenizer.decode(prompt)) + r!.text + '\n').to.equal(c.expected_stdout);
          });
        }

        it("matches run.c's top-1 logit at every one of 200 greedy steps within 1e-4", function () {
          const c = golden.cases.find((x) => x.prompt === '')!;
          const steps = greedySteps(m, c.prompt_ids, c.steps);
          expect(steps.map((s) => s[0])).to.deep.equal(c.per_step_top1.map((s) => s[0]));
          expectClose(Float32Array.from(steps.map((s) => s[1])), Float32Array.from(c.per_step_top1.map((s) => s[1])), {
            atol: 1e-4,
            rtol: 0,
          });
        });
      });
    }
  });

  // 16-bit storage: every op rounds its output to the dtype, so the logits move by a few u·max|logit| (u = 2^-11 for
  // float16, 2^-8 for bfloat16); seen: at most 2.8 u·max|logit| over these 40 positions, on the CPU and the emulated
  // device, decoding or prefilling. The bound is 5 u·max|logit| (0.054 and 0.43 here); a wrong score, mask or rotation
  // at any position moves the logits by units. Before: the first position only (one key, RoPE a no-op), 0.02 / 0.15.
  const BOUND16: Record<Exclude<FloatDType, 'float32'>, number> = { float16: 5 * 2 ** -11, bfloat16: 5 * 2 ** -8 };
  const FIRST16: Record<Exclude<FloatDType, 'float32'>, number> = { float16: 0.02, bfloat16: 0.15 };
  // run.c's greedy tokens for "Once upon a time", fed as they are (teacher forcing): 40 positions
  const tokens = [...golden.cases[0]!.prompt_ids, ...golden.cases[0]!.generated_ids].slice(0, 40);
  describeDevices('16-bit weights and activations over 40 positions', (device: Device) => {
    for (const dtype of ['float16', 'bfloat16'] as const)
      describe(dtype, function () {
        let m: LoadedModel;
        let want: Float64Array[] = [];
        let tol = 0;
        before(async () => {
          m = await loadModel(join(dir, 'stories260K.bin'), { device, dtype });
          // the float64 forward of the weights as this model holds them
          const { config, source } = openLlama2c(join(dir, 'stories260K.bin'));
          want = llamaForward(config, referenceWeights(source, config.numLayers, dtype), tokens);
          source.close?.();
          tol = BOUND16[dtype] * Math.max(...want.map((l) => Math.max(...l.map(Math.abs))));
        });
        after(() => m?.model.dispose());
        const expectPositions = (got: Float32Array[], path: string) => {
          expect(got).to.have.length(tokens.length);
          got.forEach((l, p) => expectClose(l, want[p]!, { atol: tol, rtol: 0 }, `${path}, position ${p}`));
        };

        it(`decode steps: the logits of all 40 positions within 5 u·max|logit| of the float64 forward`, () => {
          expectPositions(decodeLogits(m.model, tokens), 'decode');
        });
        it(`one 40-token prefill: the logits of all 40 positions within 5 u·max|logit| of the float64 forward`, () => {
          expectPositions(prefillLogits(m, [tokens], true), 'prefill');
        });
        // against run.c (float32 weights), where weight rounding adds to it: the bound this check has always had
        it(`first-step logits within ${FIRST16[dtype]} of run.c's, same top-1`, () => {
          const first = firstStepLogits(m);
          expect(argmax(first)).to.equal(403);
          expectClose(first, Float32Array.from(golden.bos_pos0.logits), { atol: FIRST16[dtype], rtol: 0 });
        });
      });
  });
});

describe('stories260K as a GGUF with F16 and BF16 tensors', function () {
  if (!models || !golden) return skippedWithoutModels();
  const tmp = mkdtempSync(join(tmpdir(), 'mini-vllm-gguf16-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  // Weights rounded to 16 bits, computed in float32: the logits move by about the rounding of the weights.
  for (const [type, tol] of [
    ['F32', 1e-4],
    ['F16', 0.02],
    ['BF16', 0.15],
  ] as const) {
    it(`${type}: loads, first-step logits within ${tol} of run.c, greedy tokens follow run.c`, async () => {
      const path = join(tmp, `stories260K-${type}.gguf`);
      rewriteGguf(join(dir, 'stories260K.gguf'), path, type, { 'tokenizer.chat_template': CHAT_TEMPLATE });
      const m = await loadModel(path, { device: 'cpu', dtype: 'float32' });
      try {
        expectClose(firstStepLogits(m), Float32Array.from(golden.bos_pos0.logits), { atol: tol, rtol: 0 });
        const c = golden.cases[0]!;
        const [r] = await generate(m, c.prompt, { temperature: 0, maxTokens: 40 });
        expect(r!.tokenIds).to.deep.equal(c.generated_ids.slice(0, 40));
        // The chat template travels in the GGUF metadata.
        expect(m.tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi' }])).to.equal('<s>[INST] Hi [/INST]');
      } finally {
        m.model.dispose();
      }
    });
  }
});
