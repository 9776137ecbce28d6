// The one list of a model's tensors: for each device tensor (a LayerWeights / LlamaWeights field), the file tensors
// stacked into it, under Hugging Face's names and llama.cpp's GGUF names, with their shapes. The weight layout
// (open.ts), the dummy weights, the GGUF loader's names, `mini-vllm quantize` and the parameter count all read it, so
// a family's tensors are described here once.
import type { LlamaConfig } from './config.js';
import { familyOf } from './families.js';
import { hfName } from './weights.js';

export interface TensorPart {
  /** The Hugging Face name (what every WeightSource exposes). */
  hf: string;
  /** llama.cpp's name in a GGUF file. */
  gguf: string;
  shape: number[];
  /** An RMSNorm weight (Gemma's Hugging Face files store w of (1 + w); llama.cpp's converter stores 1 + w). */
  norm?: true;
  /** Expert `expert` of the GGUF file's 3-D tensor `gguf` ([numExperts, rows, cols]: llama.cpp stacks them). */
  expert?: number;
}

export interface WeightSpec {
  /** The device tensor: 'embedding', 'norm', 'lmHead', or `<layer>.<LayerWeights field>`. */
  key: string;
  parts: TensorPart[];
  /** A MoE's stacked experts (w13, w2): read by fusedMoe as they are, never packed. */
  experts?: true;
}

/** The device tensors of every layer, in order; `tied` leaves the classifier out (the embedding serves). */
export function modelTensors(c: LlamaConfig, tied = c.tieWordEmbeddings): WeightSpec[] {
  const { hiddenSize: d, intermediateSize: ff, headDim: hd, vocabSize: v } = c;
  const q = c.numHeads * hd,
    kv = c.numKvHeads * hd;
  const f = familyOf(c);
  const out: WeightSpec[] = [
    { key: 'embedding', parts: [{ hf: hfName.embedding, gguf: 'token_embd.weight', shape: [v, d] }] },
  ];
  for (let i = 0; i < c.numLayers; ++i) {
    const part = (hf: string, gguf: string, shape: number[], bias = false): TensorPart => ({
      hf: bias ? hfName.layerBias(i, hf) : hfName.layer(i, hf),
      gguf: `blk.${i}.${gguf}.${bias ? 'bias' : 'weight'}`,
      shape,
      ...(shape.length === 1 && !bias ? { norm: true as const } : {}),
    });
    const add = (key: string, ...parts: TensorPart[]) => out.push({ key: `${i}.${key}`, parts });
    add('inputNorm', part('input_layernorm', 'attn_norm', [d]));
    // Phi-3's projections are fused in the file as they are on the device
    if (f.fused) add('qkv', part('self_attn.qkv_proj', 'attn_qkv', [q + 2 * kv, d]));
    else
      add(
        'qkv',
        part('self_attn.q_proj', 'attn_q', [q, d]),
        part('self_attn.k_proj', 'attn_k', [kv, d]),
        part('self_attn.v_proj', 'attn_v', [kv, d]),
      );
    add('o', part('self_attn.o_proj', 'attn_output', [d, q]));
    // the norm before the MLP: Llama's post_attention_layernorm; Gemma's pre_feedforward_layernorm (its
    // post_attention_layernorm normalises the attention's output)
    add('postNorm', part(f.sandwichNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm', 'ffn_norm', [d]));
    if (c.moe) moeTensors(c, i, out);
    else if (f.fused) add('gateUp', part('mlp.gate_up_proj', 'ffn_up', [2 * ff, d]));
    else add('gateUp', part('mlp.gate_proj', 'ffn_gate', [ff, d]), part('mlp.up_proj', 'ffn_up', [ff, d]));
    if (!c.moe) add('down', part('mlp.down_proj', 'ffn_down', [d, ff]));
    if (c.attentionBias)
      add(
        'qkvBias',
        part('self_attn.q_proj', 'attn_q', [q], true),
        part('self_attn.k_proj', 'attn_k', [kv], true),
        part('self_attn.v_proj', 'attn_v', [kv], true),
      );
    if (c.qkNorm) {
      // OLMoE normalises the whole q and k projections, the others each head
      const whole = f.qkNormOver === 'projection';
      add('qNorm', part('self_attn.q_norm', 'attn_q_norm', [whole ? q : hd]));
      add('kNorm', part('self_attn.k_norm', 'attn_k_norm', [whole ? kv : hd]));
    }
    if (f.sandwichNorms) {
      add('attnOutNorm', part('post_attention_layernorm', 'post_attention_norm', [d]));
      add('ffnOutNorm', part('post_feedforward_layernorm', 'post_ffw_norm', [d]));
    }
  }
  out.push({ key: 'norm', parts: [{ hf: hfName.norm, gguf: 'output_norm.weight', shape: [d], norm: true }] });
  if (!tied) out.push({ key: 'lmHead', parts: [{ hf: hfName.lmHead, gguf: 'output.weight', shape: [v, d] }] });
  return out;
}

/**
 * A MoE layer's router ([numExperts, hidden]) and its experts stacked as fusedMoe reads them: w13, each expert's gate
 * rows then its up rows; w2, each expert's down rows. In a GGUF file each kind is one 3-D tensor.
 */
function moeTensors(c: LlamaConfig, i: number, out: WeightSpec[]): void {
  const { hiddenSize: d, intermediateSize: ff } = c;
  const E = c.moe!.numExperts;
  const mixtral = familyOf(c).moeNames === 'mixtral';
  const base = mixtral ? `model.layers.${i}.block_sparse_moe` : `model.layers.${i}.mlp`;
  const names = mixtral
    ? { gate: 'w1', up: 'w3', down: 'w2' }
    : { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };
  const expert = (j: number, w: 'gate' | 'up' | 'down', shape: number[]): TensorPart => ({
    hf: `${base}.experts.${j}.${names[w]}.weight`,
    gguf: `blk.${i}.ffn_${w}_exps.weight`,
    shape,
    expert: j,
  });
  out.push({
    key: `${i}.router`,
    parts: [{ hf: `${base}.gate.weight`, gguf: `blk.${i}.ffn_gate_inp.weight`, shape: [E, d] }],
  });
  const experts = Array.from({ length: E }, (_, j) => j);
  out.push({
    key: `${i}.w13`,
    parts: experts.flatMap((j) => [expert(j, 'gate', [ff, d]), expert(j, 'up', [ff, d])]),
    experts: true,
  });
  out.push({ key: `${i}.w2`, parts: experts.map((j) => expert(j, 'down', [d, ff])), experts: true });
  const s = c.moe!.sharedExpertSize;
  if (s) {
    // Qwen2-MoE's shared expert: a dense SwiGLU MLP and its gate (one row)
    const shared = (hf: string, gguf: string, shape: number[]): TensorPart => ({
      hf: `${base}.${hf}.weight`,
      gguf: `blk.${i}.${gguf}.weight`,
      shape,
    });
    out.push({
      key: `${i}.sharedGateUp`,
      parts: [
        shared('shared_expert.gate_proj', 'ffn_gate_shexp', [s, d]),
        shared('shared_expert.up_proj', 'ffn_up_shexp', [s, d]),
      ],
    });
    out.push({ key: `${i}.sharedDown`, parts: [shared('shared_expert.down_proj', 'ffn_down_shexp', [d, s])] });
    out.push({ key: `${i}.sharedGate`, parts: [shared('shared_expert_gate', 'ffn_gate_inp_shexp', [1, d])] });
  }
}

/** Parameters of the model: every tensor modelTensors lists. */
export function parameterCount(c: LlamaConfig): number {
  let n = 0;
  for (const w of modelTensors(c)) for (const p of w.parts) n += p.shape.reduce((a, b) => a * b, 1);
  return n;
}
