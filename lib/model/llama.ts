// The forward pass of every family lib/model/families.ts describes (Llama's, plus q/k/v biases and q/k norms where
// the config says), written from ops.* alone. One call runs one step over a flat batch of tokens (any mix of
// prefill and decode); K/V go through the paged cache, and logits come back only for the rows asked for.
import type { Device, FloatDType } from '../dtype.js';
import { ropeCosSinCache } from '../ops/pos-encoding.js';
import { opsWith } from '../ops/profiled.js';
import type { OpProfiler } from '../calls.js';
import type { AttentionMetadata } from '../ops/index.js';
import { Tensor } from '../tensor.js';
import { QUANT_FORMATS, type QuantType } from '../quant/formats.js';
import { QuantizedTensor } from '../quant/tensor.js';
import { type LlamaConfig, layerWindow } from './config.js';
import { familyOf } from './families.js';
import { kvBytesPerSlotFor } from './memory-plan.js';
import {
  disposeWeight,
  embeddingAny,
  type EmbeddingTable,
  type LinearWeight,
  linearAny,
  PackedQuantWeight,
  weightBytes,
} from './linear-weight.js';

// The matrices are float tensors or quantised ones (linear-weight.ts); a fused projection whose source tensors
// have different quantised types (a K-quant mix) is a stack of its parts. On the CPU the matrices linear layers read,
// a tied embedding included, are packed: float ones into panels of 16 (PackedWeight, rows padded to 16), Q4_0, Q8_0,
// Q4_K and Q6_K ones interleaved by 8 rows for its GEMV (PackedQuantWeight).
export interface LayerWeights {
  inputNorm: Tensor; //       [hidden]
  qkv: LinearWeight; //       [(numHeads + 2 numKvHeads) headDim, hidden]: q, k, v projections stacked
  o: LinearWeight; //         [hidden, numHeads headDim]
  postNorm: Tensor; //        [hidden]
  gateUp?: LinearWeight; //   [2 intermediate, hidden]: gate then up, as siluAndMul reads them (not in a MoE)
  down?: LinearWeight; //     [hidden, intermediate]
  router?: LinearWeight; //   [numExperts, hidden]: a MoE's router, and its experts
  experts?: MoeExperts;
  sharedGateUp?: LinearWeight; // [2 sharedExpertSize, hidden]: Qwen2-MoE's shared expert, gate then up
  sharedDown?: LinearWeight; //  [hidden, sharedExpertSize]
  sharedGate?: LinearWeight; //  [1, hidden]: its sigmoid gate's logit
  qkvBias?: Tensor; //        [(numHeads + 2 numKvHeads) headDim]: the family's attentionBias
  qNorm?: Tensor; //          [headDim]: the family's qkNorm, and kNorm
  kNorm?: Tensor; //          [headDim]
  attnOutNorm?: Tensor; //    [hidden]: Gemma's sandwich, the attention's output normalised; and the MLP's
  ffnOutNorm?: Tensor; //     [hidden]
}

/** A MoE layer's experts as fusedMoe reads them: [numExperts · 2 intermediate, hidden], [numExperts · hidden, ...]. */
export interface MoeExperts {
  w13: Tensor | QuantizedTensor | PackedQuantWeight; // interleaved by 8 rows on the CPU where its type has a layout
  w2: Tensor | QuantizedTensor | PackedQuantWeight;
}

export interface LlamaWeights {
  embedding: EmbeddingTable; //           [vocab, hidden]
  layers: LayerWeights[];
  norm: Tensor; //                          [hidden]
  lmHead: LinearWeight; //                 [vocab, hidden]: the embedding itself when tied
}

/** Per layer, the K and V pools: [numBlocks, blockSize, numKvHeads, headDim] each. */
export interface KvCache {
  key: Tensor[];
  value: Tensor[];
  numBlocks: number;
  blockSize: number;
}

/** One step's flat inputs (int32 tensors on the model's device). */
export interface ForwardInput {
  tokenIds: Tensor; //      [numTokens]
  positions: Tensor; //     [numTokens]
  slotMapping: Tensor; //   [numTokens]: cache slot of each token (negative = padding)
  attention: AttentionMetadata;
  logitsIndices: Tensor; // [numOutputs]: the token rows whose logits are computed (each sequence's last)
}

/** Activation buffers, grown when a step needs more rows; a step works on views of their first rows. */
class Workspace {
  tokens = 0;
  outputs = 0;
  /** Bumped whenever a buffer is replaced (a CUDA graph captured before then points at freed memory). */
  generation = 0;
  bufs: Record<
    'hidden' | 'residual' | 'qkv' | 'attn' | 'gateUp' | 'act' | 'router' | 'shared' | 'sharedGate',
    Tensor
  > | null = null;
  out: { last: Tensor; logits: Tensor } | null = null;

  constructor(
    private readonly c: LlamaConfig,
    private readonly dtype: FloatDType,
    private readonly device: Device,
  ) {}

  ensure(tokens: number, outputs: number): void {
    const { c } = this;
    const opts = { dtype: this.dtype, device: this.device };
    if (tokens > this.tokens) {
      this.disposeTokens();
      const n = Math.max(tokens, Math.min(2 * this.tokens, 8192));
      const q = c.numHeads * c.headDim;
      // the MLP's width: the dense one, a MoE's shared expert, or none (fusedMoe keeps its own scratch)
      const ff = c.moe ? (c.moe.sharedExpertSize ?? 0) : c.intermediateSize;
      const shared = c.moe?.sharedExpertSize !== undefined;
      this.bufs = {
        hidden: Tensor.empty([n, c.hiddenSize], opts),
        residual: Tensor.empty([n, c.hiddenSize], opts),
        qkv: Tensor.empty([n, q + 2 * c.numKvHeads * c.headDim], opts),
        attn: Tensor.empty([n, q], opts),
        gateUp: Tensor.empty([n, Math.max(1, 2 * ff)], opts),
        act: Tensor.empty([n, Math.max(1, ff)], opts),
        router: Tensor.empty([n, c.moe?.numExperts ?? 1], opts), // a MoE's router logits
        shared: Tensor.empty([n, shared ? c.hiddenSize : 1], opts), // the shared expert's output, and its gate
        sharedGate: Tensor.empty([n, 1], opts),
      };
      this.tokens = n;
      ++this.generation;
    }
    if (outputs > this.outputs) {
      this.disposeOutputs();
      const n = Math.max(outputs, 2 * this.outputs);
      this.out = { last: Tensor.empty([n, c.hiddenSize], opts), logits: Tensor.empty([n, c.vocabSize], opts) };
      this.outputs = n;
      ++this.generation;
    }
  }

  private disposeTokens(): void {
    if (this.bufs) for (const t of Object.values(this.bufs)) t.dispose();
    this.bufs = null;
    this.tokens = 0;
  }

  private disposeOutputs(): void {
    this.out?.last.dispose();
    this.out?.logits.dispose();
    this.out = null;
    this.outputs = 0;
  }

  dispose(): void {
    this.disposeTokens();
    this.disposeOutputs();
  }
}

export class LlamaModel {
  readonly config: LlamaConfig;
  readonly weights: LlamaWeights;
  readonly dtype: FloatDType;
  readonly device: Device;
  /** [maxPositionEmbeddings, rotaryDim] cos | sin, float32 */
  private readonly cosSin: Tensor;
  /** The sliding-window layers' own table (Gemma 3's local RoPE base, unscaled), or null where they share cosSin. */
  private readonly cosSinLocal: Tensor | null;
  private readonly ws: Workspace;
  /** Per layer: whether it attends within the config's sliding window. */
  private readonly windows: boolean[];
  private disposed = false;

  constructor(config: LlamaConfig, weights: LlamaWeights, opts: { dtype: FloatDType; device: Device }) {
    this.config = config;
    this.weights = weights;
    this.dtype = opts.dtype;
    this.device = opts.device;
    this.cosSin = ropeCosSinCache(config.rotaryDim ?? config.headDim, config.maxPositionEmbeddings, config.ropeTheta, {
      dtype: 'float32',
      device: opts.device,
      scaling: config.ropeScaling ?? null,
    });
    this.cosSinLocal =
      config.slidingRopeTheta === undefined
        ? null
        : ropeCosSinCache(config.rotaryDim ?? config.headDim, config.maxPositionEmbeddings, config.slidingRopeTheta, {
            dtype: 'float32',
            device: opts.device,
            scaling: null,
          });
    this.ws = new Workspace(config, opts.dtype, opts.device);
    this.windows = Array.from({ length: config.numLayers }, (_, i) => layerWindow(config, i) > 0);
  }

  get weightsBytes(): number {
    return weightsBytes(this.weights);
  }

  /** Grows the activation buffers to hold a step of `tokens` tokens and `outputs` logits rows (they never shrink). */
  reserve(tokens: number, outputs: number): void {
    if (!Number.isInteger(tokens) || tokens < 1)
      throw new RangeError(`LlamaModel.reserve: tokens must be a positive integer, got ${tokens}`);
    if (!Number.isInteger(outputs) || outputs < 1)
      throw new RangeError(`LlamaModel.reserve: outputs must be a positive integer, got ${outputs}`);
    this.ws.ensure(tokens, outputs);
  }

  /** Changes whenever forward() replaced an activation buffer (a step larger than any before, past reserve()). */
  get workspaceGeneration(): number {
    return this.ws.generation;
  }

  /** Bytes of K and V for one cache slot over all layers. */
  get kvBytesPerSlot(): number {
    return kvBytesPerSlotFor(this.config, this.dtype);
  }

  /**
   * Runs one step and returns the logits of the rows in `logitsIndices`: [numOutputs, vocab] in the model dtype.
   * The returned tensor is a view of a buffer the next call overwrites. `profiler` times every op (lib/calls.ts).
   */
  forward(input: ForwardInput, kv: KvCache, profiler?: OpProfiler): Tensor {
    if (this.disposed) throw new Error('LlamaModel: the model was disposed');
    const c = this.config;
    const T = input.tokenIds.shape[0]!;
    const S = input.logitsIndices.shape[0]!;
    if (input.positions.shape[0] !== T || input.slotMapping.shape[0] !== T)
      throw new RangeError(`LlamaModel.forward: positions and slotMapping must have numTokens = ${T} entries`);
    if (kv.key.length !== c.numLayers)
      throw new RangeError(`LlamaModel.forward: the KV cache has ${kv.key.length} layers, the model ${c.numLayers}`);
    this.ws.ensure(T, S);
    const b = this.ws.bufs!;
    const rows = (t: Tensor) => t.narrow(0, 0, T);
    const hidden = rows(b.hidden); //     [T, hidden]
    const residual = rows(b.residual); // [T, hidden]
    const qkv = rows(b.qkv); //           [T, (H + 2 KV) headDim]
    const attn = rows(b.attn); //         [T, H headDim]
    const gateUp = rows(b.gateUp); //     [T, 2 intermediate]
    const act = rows(b.act); //           [T, intermediate]
    const router = rows(b.router); //     [T, numExperts] (MoE)
    const shared = rows(b.shared); //     [T, hidden] (Qwen2-MoE's shared expert)
    const sharedGate = rows(b.sharedGate); // [T, 1]
    const H = c.numHeads,
      KV = c.numKvHeads,
      hd = c.headDim,
      eps = c.rmsNormEps;
    const heads = qkv.view([T, H + 2 * KV, hd]);
    const q = heads.narrow(1, 0, H),
      k = heads.narrow(1, H, KV),
      v = heads.narrow(1, H + KV, KV);
    const q2 = qkv.narrow(1, 0, H * hd),
      k2 = qkv.narrow(1, H * hd, KV * hd);
    const attn3 = attn.view([T, H, hd]);
    const isNeox = c.ropeStyle === 'neox';
    const w = this.weights;
    const ops = opsWith(profiler);

    const family = familyOf(c);
    // the layers with a sliding window read the same metadata with the window set; Gemma 2 caps every layer's scores
    const windows = this.windows;
    const cap = c.attnLogitSoftCap ?? 0;
    const global = cap > 0 ? { ...input.attention, logitsSoftCap: cap } : input.attention;
    const windowed = { ...global, slidingWindow: c.slidingWindow ?? 0 };
    const local = this.cosSinLocal ?? this.cosSin;
    embeddingAny(residual, input.tokenIds, w.embedding, ops);
    if (family.scaleEmbedding) ops.scale(residual, residual, Math.sqrt(c.hiddenSize));
    for (let i = 0; i < c.numLayers; ++i) {
      const l = w.layers[i]!;
      // x = norm(residual); from the second layer on, residual += the previous block's output first
      if (i === 0) ops.rmsNorm(hidden, residual, l.inputNorm, eps);
      else ops.fusedAddRmsNorm(hidden, residual, l.inputNorm, eps);
      linearAny(qkv, hidden, l.qkv, ops, l.qkvBias ?? null);
      if (l.qNorm && l.kNorm) {
        if (family.qkNormOver === 'head') {
          ops.rmsNormHeads(q, q, l.qNorm, eps);
          ops.rmsNormHeads(k, k, l.kNorm, eps);
        } else {
          ops.rmsNorm(q2, q2, l.qNorm, eps);
          ops.rmsNorm(k2, k2, l.kNorm, eps);
        }
      }
      ops.rotaryEmbedding(input.positions, q2, k2, hd, windows[i] ? local : this.cosSin, isNeox);
      ops.reshapeAndCache(k, v, kv.key[i]!, kv.value[i]!, input.slotMapping);
      ops.pagedAttention(attn3, q, kv.key[i]!, kv.value[i]!, windows[i] ? windowed : global);
      linearAny(hidden, attn, l.o, ops);
      if (l.attnOutNorm) ops.rmsNorm(hidden, hidden, l.attnOutNorm, eps);
      ops.fusedAddRmsNorm(hidden, residual, l.postNorm, eps);
      if (l.experts) {
        if (l.sharedGateUp) {
          // Qwen2-MoE: the shared expert over the same input, added with its gate after the routed experts
          linearAny(gateUp, hidden, l.sharedGateUp, ops);
          ops.siluAndMul(act, gateUp);
          linearAny(shared, act, l.sharedDown!, ops);
          linearAny(sharedGate, hidden, l.sharedGate!, ops);
        }
        linearAny(router, hidden, l.router!, ops);
        this.moe(ops, hidden, hidden, router, l.experts); // in place: fusedMoe writes after it has read x
        if (l.sharedGateUp) ops.sigmoidGatedAdd(hidden, hidden, shared, sharedGate);
      } else {
        linearAny(gateUp, hidden, l.gateUp!, ops);
        if (family.activation === 'gelu_tanh') ops.geluTanhAndMul(act, gateUp);
        else ops.siluAndMul(act, gateUp);
        linearAny(hidden, act, l.down!, ops);
      }
      if (l.ffnOutNorm) ops.rmsNorm(hidden, hidden, l.ffnOutNorm, eps);
    }
    ops.fusedAddRmsNorm(hidden, residual, w.norm, eps);
    const out = this.ws.out!;
    const last = out.last.narrow(0, 0, S);
    const logits = out.logits.narrow(0, 0, S);
    ops.gatherRows(last, hidden, input.logitsIndices);
    linearAny(logits, last, w.lmHead, ops);
    if (c.finalLogitSoftCap) ops.softCap(logits, logits, c.finalLogitSoftCap);
    return logits;
  }

  /** out = the layer's experts over x, routed by the router logits: fusedMoe, quantFusedMoe or its interleaved form. */
  private moe(ops: ReturnType<typeof opsWith>, out: Tensor, x: Tensor, router: Tensor, e: MoeExperts): void {
    const { numExperts: E, topK, renormalize } = this.config.moe!;
    const { hiddenSize: H, intermediateSize: I } = this.config;
    const id = (t: QuantType) => QUANT_FORMATS[t].id;
    if (e.w13 instanceof PackedQuantWeight && e.w2 instanceof PackedQuantWeight)
      ops.quantFusedMoePacked(out, x, router, e.w13.data, e.w2.data, id(e.w13.type), id(e.w2.type), topK, renormalize);
    else if (e.w13 instanceof QuantizedTensor && e.w2 instanceof QuantizedTensor)
      ops.quantFusedMoe(out, x, router, e.w13.data, e.w2.data, id(e.w13.type), id(e.w2.type), topK, renormalize);
    else if (e.w13 instanceof Tensor && e.w2 instanceof Tensor)
      ops.fusedMoe(out, x, router, e.w13.view([E, 2 * I, H]), e.w2.view([E, H, I]), topK, renormalize);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ws.dispose();
    this.cosSin.dispose();
    this.cosSinLocal?.dispose();
    disposeWeights(this.weights);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export function disposeWeights(w: LlamaWeights): void {
  w.embedding.dispose();
  if (w.lmHead !== w.embedding) disposeWeight(w.lmHead);
  w.norm.dispose();
  for (const l of w.layers) layerWeights(l).forEach(disposeWeight);
}

export function weightsBytes(w: LlamaWeights): number {
  const all = new Set<LinearWeight>([w.embedding, w.lmHead, w.norm, ...w.layers.flatMap(layerWeights)]);
  let n = 0;
  for (const t of all) n += weightBytes(t);
  return n;
}

function layerWeights(l: LayerWeights): LinearWeight[] {
  const all = [l.qkvBias, l.qNorm, l.kNorm, l.attnOutNorm, l.ffnOutNorm, l.gateUp, l.down, l.router];
  all.push(l.sharedGateUp, l.sharedDown, l.sharedGate);
  const extra = all.filter((t): t is LinearWeight => t !== undefined);
  return [l.inputNorm, l.qkv, l.o, l.postNorm, ...extra, ...(l.experts ? [l.experts.w13, l.experts.w2] : [])];
}
