// Mixture of Experts (Mixtral, Qwen-MoE, OLMoE): the router's softmax and top k, and every routed expert's SwiGLU MLP,
// in one op. Tokens are grouped by expert so that each expert's weights are read once a step (csrc/cpu/moe.cc,
// csrc/cuda/moe.cu say how).
import type { Device } from '../dtype.js';
import { Tensor } from '../tensor.js';
import { defineOps, runOp, zeros } from './registry.js';

// quantFusedMoe's arguments and example call, which quantFusedMoePacked shares (two Q8_0 experts of 32 x 32)
const QUANT_MOE: [string, (device: Device) => unknown[]] = [
  'out: float[numTokens, hidden], x: float[numTokens, hidden], routerLogits: anyFloat[numTokens, numExperts], ' +
    'w13: int32[expertRows, rowWords], w2: int32[expertRows2, rowWords2], type13: positiveInteger, ' +
    'type2: positiveInteger, topK: positiveInteger, renormalize: boolean',
  (device) => [
    ...zeros(device, [3, 32], [3, 32], [3, 2]),
    Tensor.zeros([2 * 2 * 32, 9], { dtype: 'int32', device }),
    Tensor.zeros([2 * 32, 9], { dtype: 'int32', device }),
    8,
    8,
    1,
    false,
  ],
];

const OPS = defineOps('moe', {
  fusedMoe: [
    'out: float[numTokens, hidden], x: float[numTokens, hidden], routerLogits: anyFloat[numTokens, numExperts], ' +
      'w13: anyFloat[numExperts, twiceIntermediate, hidden], w2: anyFloat[numExperts, hidden, intermediate], ' +
      'topK: positiveInteger, renormalize: boolean',
    (device) => [...zeros(device, [3, 16], [3, 16], [3, 4], [4, 8, 16], [4, 16, 4]), 2, true],
  ],
  quantFusedMoe: QUANT_MOE,
});

const PACKED = defineOps(
  'moe',
  {
    quantFusedMoePacked: QUANT_MOE,
  },
  ['cpu'],
);

/**
 * A Mixture-of-Experts MLP over a batch of tokens. Each token's router probabilities are softmax(routerLogits) in
 * fp32; its topK most probable experts (the lower id first among equal ones) get their probability as weight,
 * divided by the k weights' sum where `renormalize` (Mixtral, Qwen3-MoE; not OLMoE, Qwen2-MoE). Then
 *
 *   out[t] = Σ_j weight_j · w2[e_j] · (silu(gate_j) ⊙ up_j),  gate_j | up_j = w13[e_j] · x[t]
 *
 * each expert's linear layers rounded to x's dtype as `linear` then `siluAndMul` round, the weighted sum in fp32
 * rounded once.
 *
 * @param out          [numTokens, hidden], x's dtype, written (rows may be strided); may be x itself (in place)
 * @param x            [numTokens, hidden] (rows may be strided)
 * @param routerLogits [numTokens, numExperts], any float dtype; numExperts at most 256
 * @param w13          [numExperts, 2 intermediate, hidden], dense: each expert's gate rows, then its up rows
 * @param w2           [numExperts, hidden, intermediate], dense, w13's dtype
 * @param topK         experts per token, at most min(numExperts, 32)
 * @param renormalize  whether the k weights are divided by their sum
 */
export function fusedMoe(
  out: Tensor,
  x: Tensor,
  routerLogits: Tensor,
  w13: Tensor,
  w2: Tensor,
  topK: number,
  renormalize: boolean,
): void {
  runOp(OPS.fusedMoe, [out, x, routerLogits, w13, w2, topK, renormalize]);
}

/**
 * {@link fusedMoe} with quantised experts: w13 int32 [numExperts · 2 intermediate, rowWords] (expert e's gate rows,
 * then its up rows, from row 2 e intermediate) of ggml type `type13` and w2 int32 [numExperts · hidden, rowWords] of
 * `type2` (as quantLinear reads them; hidden a multiple of type13's block, intermediate of type2's: llama.cpp's
 * Q4_K_M files keep some layers' down experts in Q6_K).
 */
export function quantFusedMoe(
  out: Tensor,
  x: Tensor,
  routerLogits: Tensor,
  w13: Tensor,
  w2: Tensor,
  type13: number,
  type2: number,
  topK: number,
  renormalize: boolean,
): void {
  runOp(OPS.quantFusedMoe, [out, x, routerLogits, w13, w2, type13, type2, topK, renormalize]);
}

/**
 * {@link quantFusedMoe} over experts interleaved by 8 rows (CPU): w13 and w2 as {@link packQuantWeight} writes the
 * stacked matrices, of the types it interleaves (Q4_0, Q8_0, Q4_K, Q6_K): each expert's slice is its own interleaved
 * matrix, which quantLinearPacked's GEMV reads at the memory's speed. The same result within the same bounds.
 */
export function quantFusedMoePacked(
  out: Tensor,
  x: Tensor,
  routerLogits: Tensor,
  w13: Tensor,
  w2: Tensor,
  type13: number,
  type2: number,
  topK: number,
  renormalize: boolean,
): void {
  runOp(PACKED.quantFusedMoePacked, [out, x, routerLogits, w13, w2, type13, type2, topK, renormalize]);
}
