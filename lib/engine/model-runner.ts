// The model runner: turns a scheduled step into the forward pass's flat inputs, runs the model, and samples each
// sequence that reached its last token with that sequence's own params. The inputs live in one buffer (host and
// device) sized once for the largest step (step-inputs.ts). With decode graphs, a step of one-token sequences replays
// a CUDA or CPU graph that reads the same buffer (decode-graphs.ts); every other step runs eagerly.
import { attentionScale } from '../model/config.js';
import type { KvCache, LlamaModel } from '../model/llama.js';
import { NULL_STEP_PROFILER, type StepProfiler } from '../profiler.js';
import { applyTokenBitmask } from '../ops/sampling.js';
import type { SampleResult, Sampler, SamplingState } from '../sampling/sampler.js';
import { bitmaskWords } from '../structured/grammars.js';
import { Tensor } from '../tensor.js';
import { type CudaGraphStats, DecodeGraphs, type GraphBackend, isUniformDecode } from './decode-graphs.js';
import type { SchedulerOutput } from './scheduler.js';
import { StepInputs, type StepLimits } from './step-inputs.js';

/** The largest step the runner is built for (its input buffer's size). */
export type RunnerLimits = StepLimits;

export class ModelRunner {
  readonly model: LlamaModel;
  readonly kv: KvCache;
  readonly limits: RunnerLimits;
  private readonly sampler: Sampler;
  private readonly inputs: StepInputs;
  private readonly graphs: DecodeGraphs | null = null;
  /** Structured output's masks: host words [maxNumSeqs, words], and the bitmask and rows on the model's device. */
  private masks: { host: Int32Array; rows: Int32Array; bitmask: Tensor; rowIds: Tensor } | null = null;

  /** `graphs`: capture decode graphs of these batch sizes with this backend (null: always eager). */
  constructor(
    model: LlamaModel,
    kv: KvCache,
    sampler: Sampler,
    limits: RunnerLimits,
    graphs: { backend: GraphBackend; sizes: readonly number[] } | null = null,
  ) {
    this.model = model;
    this.kv = kv;
    this.sampler = sampler;
    this.limits = limits;
    const { maxNumBatchedTokens: T, maxNumSeqs: S } = limits;
    this.inputs = new StepInputs(limits, model.device);
    if (graphs) {
      try {
        // the graphs point into the activation buffers: give them their final size before capturing (a lazy
        // backend's graphs are recorded as they are needed, and again when the buffers grow)
        if (!graphs.backend.lazy) model.reserve(T, S);
        this.graphs = new DecodeGraphs(model, kv, graphs.backend, graphs.sizes, this.inputs);
      } catch (e) {
        this.dispose();
        throw e;
      }
    }
  }

  /** The decode graphs' sizes and counters, or null when every step runs eagerly. */
  graphStats(): CudaGraphStats | null {
    return this.graphs?.stats() ?? null;
  }

  /** Runs the step; the result has one row per scheduled sequence with `sample` set, in schedule order. */
  run(out: SchedulerOutput, profiler: StepProfiler = NULL_STEP_PROFILER): SampleResult {
    const seqs = out.scheduled;
    const graphs = isUniformDecode(seqs) ? this.graphs : null;
    const logits = profiler.range('forward', () => graphs?.run(seqs, profiler) ?? this.forward(out, profiler));
    if (!seqs.some((s) => s.sample)) return { tokens: new Int32Array(0), logprobs: [] };
    const states = seqs.filter((s) => s.sample).map((s) => s.seq.state);
    // the grammars' masks are computed here, on the host, while a device still runs the forward pass
    if (states.some((s) => s.matcher !== null)) profiler.range('grammar', () => this.applyGrammars(logits, states));
    return profiler.range('sample', () => this.sampler.sampleWithLogprobs(logits, states, profiler));
  }

  /** Sets the logits each constrained sequence's grammar refuses to -inf (ops.applyTokenBitmask). */
  private applyGrammars(logits: Tensor, states: SamplingState[]): void {
    const vocab = logits.shape[1]!;
    const words = bitmaskWords(vocab);
    if (this.masks === null) {
      const S = this.limits.maxNumSeqs;
      const device = this.model.device;
      this.masks = {
        host: new Int32Array(S * words),
        rows: new Int32Array(S),
        bitmask: Tensor.empty([S, words], { dtype: 'int32', device }),
        rowIds: Tensor.empty([S], { dtype: 'int32', device }),
      };
    }
    const m = this.masks;
    let n = 0;
    states.forEach((s, r) => {
      if (s.matcher === null) return;
      s.matcher.fillBitmask(m.host, n * words);
      m.rows[n++] = r;
    });
    const bitmask = m.bitmask.narrow(0, 0, n).write(m.host.subarray(0, n * words));
    const rows = m.rowIds.narrow(0, 0, n).write(m.rows.subarray(0, n));
    applyTokenBitmask(logits, bitmask, rows);
  }

  /** The eager forward pass of any step; logits of the sampling sequences in order (one dropped row if none). */
  private forward(out: SchedulerOutput, profiler: StepProfiler): Tensor {
    const scale = attentionScale(this.model.config);
    const input = this.inputs.stageStep(out.scheduled, this.kv.blockSize, scale, profiler);
    return this.model.forward(input, this.kv, profiler);
  }

  dispose(): void {
    this.masks?.bitmask.dispose();
    this.masks?.rowIds.dispose();
    this.graphs?.dispose();
    this.inputs.dispose();
  }
}
