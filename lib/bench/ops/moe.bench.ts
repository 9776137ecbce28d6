// fusedMoe / quantFusedMoe at OLMoE's expert shapes (64 experts, top 8, hidden 2048, intermediate 1024) at batch 1
// and 16, against the read bandwidth: the bytes are the weights of the experts the step routes to (8 at batch 1, all
// 64 at batch 16: token t prefers experts 8t .. 8t + 7, mod 64), each read once, and the activations. Batch 1 routes
// each call to the next 8 experts, so its weights come from memory (the same 8 every call sat partly in the L3 cache:
// up to 139% of the read bandwidth). On the CPU also over experts interleaved by 8 rows (quantFusedMoePacked, what the
// CPU model runs).
import type { Device, FloatDType } from '../../dtype.js';
import * as ops from '../../ops/index.js';
import { QUANT_FORMATS, type QuantType, quantRowWords } from '../../quant/formats.js';
import { quantizeRows } from '../../quant/quantize.js';
import { Tensor } from '../../tensor.js';
import type { CaseList, OpCase } from './case.js';

const E = 64,
  K = 8,
  H = 2048,
  I = 1024;

/** Router logits where token t's top K experts are K (t + shift) .. K (t + shift) + K - 1 (mod E), in that order. */
function routerLogits(tokens: number, shift = 0): Float32Array {
  const r = new Float32Array(tokens * E);
  for (let t = 0; t < tokens; ++t) for (let j = 0; j < K; ++j) r[t * E + (((t + shift) * K + j) % E)] = 4 - j * 0.25;
  return r;
}

/**
 * The routers a case cycles through, one a call: a step of few tokens routes each call to the next K experts, so
 * that the experts it reads come from memory as a real step's would, not from the cache the previous call filled.
 */
function routers(tokens: number, dtype: FloatDType, device: Device): { next: () => Tensor; all: Tensor[] } {
  const all = Array.from({ length: Math.max(1, E / Math.min(E, tokens * K)) }, (_, i) =>
    Tensor.fromArray(routerLogits(tokens, i * tokens), [tokens, E], { dtype, device }),
  );
  let i = 0;
  return { next: () => all[i++ % all.length]!, all };
}

/** Experts the step reads. */
const touched = (tokens: number) => Math.min(E, tokens * K);

function floatCase(tokens: number, dtype: FloatDType): OpCase {
  const item = dtype === 'float32' ? 4 : 2;
  return {
    op: 'fusedMoe',
    dtype,
    shape: `${tokens} tokens, ${E} experts top ${K}, ${H} -> ${I}`,
    bytes: touched(tokens) * 3 * H * I * item + 2 * tokens * H * item,
    setup: (device) => {
      const x = Tensor.full([tokens, H], 0.5, { dtype, device });
      const router = routers(tokens, dtype, device);
      const w13 = Tensor.full([E, 2 * I, H], 0.01, { dtype, device });
      const w2 = Tensor.full([E, H, I], 0.01, { dtype, device });
      const out = Tensor.empty([tokens, H], { dtype, device });
      return {
        run: () => ops.fusedMoe(out, x, router.next(), w13, w2, K, false),
        free: () => [x, ...router.all, w13, w2, out].forEach((t) => t.dispose()),
      };
    },
  };
}

// One expert's quantised blocks, repeated for every expert (quantising 200M values in TypeScript takes a while).
function expertBlocks(type: QuantType, rows: number, cols: number): Uint8Array {
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < x.length; ++i) x[i] = Math.sin(i * 0.7) * 0.05;
  return quantizeRows(type, x, rows, cols);
}

function quantCase(tokens: number, type: QuantType, dtype: FloatDType, packed = false): OpCase {
  const item = dtype === 'float32' ? 4 : 2;
  const expertBytes = (2 * I * quantRowWords(type, H) + H * quantRowWords(type, I)) * 4;
  return {
    op: packed ? 'quantFusedMoePacked' : 'quantFusedMoe',
    dtype: `${dtype}/w ${type}`,
    shape: `${tokens} tokens, ${E} experts top ${K}, ${H} -> ${I}`,
    bytes: touched(tokens) * expertBytes + 2 * tokens * H * item,
    setup: (device) => {
      const x = Tensor.full([tokens, H], 0.5, { dtype, device });
      const router = routers(tokens, dtype, device);
      const make = (rows: number, cols: number) => {
        const one = expertBlocks(type, rows, cols);
        const words = quantRowWords(type, cols);
        const all = new Int32Array(E * rows * words);
        const bytes = new Uint8Array(all.buffer);
        const rowBytes = one.byteLength / rows;
        for (let e = 0; e < E; ++e)
          for (let r = 0; r < rows; ++r)
            bytes.set(one.subarray(r * rowBytes, (r + 1) * rowBytes), (e * rows + r) * words * 4);
        return Tensor.fromArray(all, [E * rows, words], { dtype: 'int32', device });
      };
      const id = QUANT_FORMATS[type].id;
      const interleave = (w: Tensor) => {
        if (!packed) return w;
        const p = Tensor.empty(w.shape, { dtype: 'int32', device });
        ops.packQuantWeight(p, w, id);
        w.dispose();
        return p;
      };
      const w13 = interleave(make(2 * I, H));
      const w2 = interleave(make(H, I));
      const out = Tensor.empty([tokens, H], { dtype, device });
      const run = packed
        ? () => ops.quantFusedMoePacked(out, x, router.next(), w13, w2, id, id, K, false)
        : () => ops.quantFusedMoe(out, x, router.next(), w13, w2, id, id, K, false);
      return {
        run,
        free: () => [x, ...router.all, w13, w2, out].forEach((t) => t.dispose()),
      };
    },
  };
}

export const cases: CaseList = (quick, device) => [
  ...(quick ? (['float32'] as const) : (['float32', 'bfloat16'] as const)).flatMap((dtype) =>
    [1, 16].map((tokens) => floatCase(tokens, dtype)),
  ),
  ...(quick ? (['Q4_K'] as const) : (['Q8_0', 'Q4_K'] as const)).flatMap((type) =>
    [1, 16].map((tokens) => quantCase(tokens, type, 'float32')),
  ),
  // on the CPU, the experts interleaved by 8 rows as the CPU model loads them
  ...(device === 'cpu' ? (['Q8_0', 'Q4_K'] as const) : []).flatMap((type) =>
    [1, 16].map((tokens) => quantCase(tokens, type, 'float32', true)),
  ),
];
