// The model runner: turns a scheduled step into the forward pass's flat inputs, runs the model, and samples each
// sequence that reached its last token with that sequence's own params. The inputs live in one buffer (host and
// device) sized once for the largest step (step-inputs.ts). With decode graphs, a step of one-token sequences replays
// a CUDA or CPU graph that reads the same buffer (decode-graphs.ts); every other step runs eagerly.
import { attentionScale } from '../model/config.js';
import type { KvCache, LlamaModel } from '../model/llama.js';
import { NULL_STEP_PROFILER, type StepProfiler } from '../profiler.js';
import type { SampleResult, Sampler } from '../sampling/sampler.js';
import type { Tensor } from '../tensor.js';
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
    return profiler.range('sample', () => this.sampler.sampleWithLogprobs(logits, states, profiler));
  }

  /** The eager forward pass of any step; logits of the sampling sequences in order (one dropped row if none). */
  private forward(out: SchedulerOutput, profiler: StepProfiler): Tensor {
    const scale = attentionScale(this.model.config);
    const input = this.inputs.stageStep(out.scheduled, this.kv.blockSize, scale, profiler);
    return this.model.forward(input, this.kv, profiler);
  }

  dispose(): void {
    this.graphs?.dispose();
    this.inputs.dispose();
  }
}
