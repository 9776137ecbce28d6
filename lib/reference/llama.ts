// Reference Llama forward pass in float64 over plain arrays, one sequence, dense causal attention: the spec the
// paged, fused model in lib/model is held to. Weights by Hugging Face name, unfused, [out, in] row-major.
import type { LlamaConfig } from '../model/config.js';
import { ropeCosSin } from './pos-encoding.js';

export type ReferenceWeights = Map<string, Float32Array>;

function w(weights: ReferenceWeights, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new Error(`reference llama: weight ${name} is missing`);
  return t;
}

/** y[o] = sum_i W[o, i] x[i] */
function product(W: Float32Array, x: Float64Array, outF: number): Float64Array {
  const inF = x.length;
  const y = new Float64Array(outF);
  for (let o = 0; o < outF; ++o) {
    let s = 0;
    for (let i = 0; i < inF; ++i) s += W[o * inF + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

function rmsNorm(x: Float64Array, g: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * g[i]!);
}

/** Rotates each head of `v` in place at position `pos` (NeoX halves or GPT-J adjacent pairs). */
function rope(v: Float64Array, heads: number, hd: number, pos: number, cosSin: Float32Array, neox: boolean): void {
  const half = hd / 2;
  for (let h = 0; h < heads; ++h) {
    for (let i = 0; i < half; ++i) {
      const cos = cosSin[pos * hd + i]!,
        sin = cosSin[pos * hd + half + i]!;
      const a = h * hd + (neox ? i : 2 * i),
        b = h * hd + (neox ? i + half : 2 * i + 1);
      const x = v[a]!,
        y = v[b]!;
      v[a] = x * cos - y * sin;
      v[b] = y * cos + x * sin;
    }
  }
}

export interface ReferenceForwardOptions {
  /**
   * What a linear layer's input becomes before its product (e.g. roundActivationsQ8 for the CPU's quantised GEMV),
   * told the weight's name and the token's position.
   */
  linearInput?: (x: Float64Array, weight: string, position: number) => Float64Array;
}

/** Logits [tokens.length, vocab] of every position of one sequence. */
export function llamaForward(
  c: LlamaConfig,
  weights: ReferenceWeights,
  tokens: readonly number[],
  opts: ReferenceForwardOptions = {},
): Float64Array[] {
  const input = opts.linearInput ?? ((x: Float64Array) => x);
  const matvec = (name: string, x: Float64Array, outF: number, t: number) =>
    product(w(weights, name), input(x, name, t), outF);
  const D = c.hiddenSize,
    hd = c.headDim,
    H = c.numHeads,
    KV = c.numKvHeads,
    group = H / KV;
  const cosSin = ropeCosSin(hd, Math.max(tokens.length, 1), c.ropeTheta, c.ropeScaling ?? null);
  const neox = c.ropeStyle === 'neox';
  const P = (i: number, n: string) => `model.layers.${i}.${n}.weight`;
  const L = (i: number, n: string) => w(weights, P(i, n));
  // h[t]: the residual stream of token t
  const emb = w(weights, 'model.embed_tokens.weight');
  const h = tokens.map((t) => Float64Array.from(emb.subarray(t * D, (t + 1) * D)));
  for (let l = 0; l < c.numLayers; ++l) {
    const ks: Float64Array[] = [],
      vs: Float64Array[] = [],
      qs: Float64Array[] = [];
    for (let t = 0; t < tokens.length; ++t) {
      const x = rmsNorm(h[t]!, L(l, 'input_layernorm'), c.rmsNormEps);
      const q = matvec(P(l, 'self_attn.q_proj'), x, H * hd, t);
      const k = matvec(P(l, 'self_attn.k_proj'), x, KV * hd, t);
      rope(q, H, hd, t, cosSin, neox);
      rope(k, KV, hd, t, cosSin, neox);
      qs.push(q);
      ks.push(k);
      vs.push(matvec(P(l, 'self_attn.v_proj'), x, KV * hd, t));
    }
    for (let t = 0; t < tokens.length; ++t) {
      const att = new Float64Array(H * hd);
      for (let head = 0; head < H; ++head) {
        const kvh = Math.floor(head / group);
        // softmax over positions 0..t of q·k / sqrt(hd)
        const scores = Array.from({ length: t + 1 }, (_, s) => {
          let dot = 0;
          for (let i = 0; i < hd; ++i) dot += qs[t]![head * hd + i]! * ks[s]![kvh * hd + i]!;
          return dot / Math.sqrt(hd);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; ++s)
          for (let i = 0; i < hd; ++i) att[head * hd + i]! += (e[s]! / z) * vs[s]![kvh * hd + i]!;
      }
      const o = matvec(P(l, 'self_attn.o_proj'), att, D, t);
      const r = h[t]!;
      for (let i = 0; i < D; ++i) r[i]! += o[i]!;
      const x = rmsNorm(r, L(l, 'post_attention_layernorm'), c.rmsNormEps);
      const gate = matvec(P(l, 'mlp.gate_proj'), x, c.intermediateSize, t);
      const up = matvec(P(l, 'mlp.up_proj'), x, c.intermediateSize, t);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      const down = matvec(P(l, 'mlp.down_proj'), act, D, t);
      for (let i = 0; i < D; ++i) r[i]! += down[i]!;
    }
  }
  const head = c.tieWordEmbeddings || !weights.has('lm_head.weight') ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return h.map((r, t) => matvec(head, rmsNorm(r, w(weights, 'model.norm.weight'), c.rmsNormEps), c.vocabSize, t));
}
