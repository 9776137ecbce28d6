// The model runner: turns a scheduled step into the forward pass's flat inputs, runs the model, and samples each
// sequence that reached its last token with that sequence's own params. Input buffers (host and device) are sized
// once for the largest step and reused. With decode graphs, a step of one-token sequences replays a CUDA graph
// instead (decode-graphs.ts); every other step runs eagerly.
import type { KvCache, LlamaModel } from '../model/llama.js';
import { NULL_STEP_PROFILER, type StepProfiler } from '../profiler.js';
import type { SampleResult, Sampler } from '../sampling/sampler.js';
import { Tensor } from '../tensor.js';
import { type CudaGraphStats, DecodeGraphs, type GraphBackend, isUniformDecode } from './decode-graphs.js';
import type { SchedulerOutput } from './scheduler.js';

export interface RunnerLimits {
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  /** Block-table width: blocks of the longest sequence (maxModelLen / blockSize, rounded up). */
  maxBlocksPerSeq: number;
}

/** One int32 input: a host staging array and its device twin, both of the largest size a step can need. */
class Input {
  readonly host: Int32Array;
  readonly device: Tensor;

  constructor(size: number, device: LlamaModel['device']) {
    this.host = new Int32Array(size);
    this.device = Tensor.empty([size], { dtype: 'int32', device });
  }

  /** Copies the first n staged values to the device; returns that view, shaped as asked. */
  upload(n: number, shape: number[] = [n]): Tensor {
    return this.device.narrow(0, 0, n).write(this.host.subarray(0, n)).view(shape);
  }

  dispose(): void {
    this.device.dispose();
  }
}

export class ModelRunner {
  readonly model: LlamaModel;
  readonly kv: KvCache;
  readonly limits: RunnerLimits;
  private readonly sampler: Sampler;
  private readonly tokenIds: Input; //     [maxNumBatchedTokens]
  private readonly positions: Input; //    [maxNumBatchedTokens]
  private readonly slotMapping: Input; //  [maxNumBatchedTokens]
  private readonly queryStartLoc: Input; // [maxNumSeqs + 1]
  private readonly seqLens: Input; //      [maxNumSeqs]
  private readonly blockTables: Input; //  [maxNumSeqs * maxBlocksPerSeq], used as [numSeqs, widest table]
  private readonly logitsIndices: Input; // [maxNumSeqs]
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
    const { maxNumBatchedTokens: T, maxNumSeqs: S, maxBlocksPerSeq: B } = limits;
    const d = model.device;
    this.tokenIds = new Input(T, d);
    this.positions = new Input(T, d);
    this.slotMapping = new Input(T, d);
    this.queryStartLoc = new Input(S + 1, d);
    this.seqLens = new Input(S, d);
    this.blockTables = new Input(S * B, d);
    this.logitsIndices = new Input(S, d);
    if (graphs) {
      try {
        // the graphs point into the activation buffers: give them their final size before capturing
        model.reserve(T, S);
        this.graphs = new DecodeGraphs(model, kv, graphs.backend, graphs.sizes, B);
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
    const logits = profiler.range('forward', () => graphs?.run(seqs, profiler) ?? this.forward(out));
    if (!seqs.some((s) => s.sample)) return { tokens: new Int32Array(0), logprobs: [] };
    const states = seqs.filter((s) => s.sample).map((s) => s.seq.state);
    return profiler.range('sample', () => this.sampler.sampleWithLogprobs(logits, states, states));
  }

  /** The eager forward pass of any step; logits of the sampling sequences in order (one dropped row if none). */
  private forward(out: SchedulerOutput): Tensor {
    const bs = this.kv.blockSize;
    const seqs = out.scheduled;
    const S = seqs.length;
    let width = 1;
    for (const s of seqs) width = Math.max(width, s.seq.blockTable.length);
    const tok = this.tokenIds.host,
      pos = this.positions.host,
      slot = this.slotMapping.host;
    const qsl = this.queryStartLoc.host,
      lens = this.seqLens.host,
      tables = this.blockTables.host,
      li = this.logitsIndices.host;
    let t = 0,
      numOutputs = 0,
      maxSeqLen = 0,
      maxQueryLen = 0;
    qsl[0] = 0;
    for (let i = 0; i < S; ++i) {
      const { seq, start, numTokens, sample } = seqs[i]!;
      const table = seq.blockTable;
      for (let p = start; p < start + numTokens; ++p, ++t) {
        tok[t] = seq.tokenAt(p);
        pos[t] = p;
        slot[t] = table[Math.floor(p / bs)]! * bs + (p % bs);
      }
      qsl[i + 1] = t;
      lens[i] = start + numTokens;
      maxSeqLen = Math.max(maxSeqLen, start + numTokens);
      maxQueryLen = Math.max(maxQueryLen, numTokens);
      for (let j = 0; j < width; ++j) tables[i * width + j] = table[j] ?? 0;
      if (sample) li[numOutputs++] = t - 1;
    }
    // A step of prefill chunks only samples nothing; the lm-head still runs on one row, whose logits are dropped.
    const rows = Math.max(numOutputs, 1);
    if (numOutputs === 0) li[0] = t - 1;
    return this.model.forward(
      {
        tokenIds: this.tokenIds.upload(t),
        positions: this.positions.upload(t),
        slotMapping: this.slotMapping.upload(t),
        logitsIndices: this.logitsIndices.upload(rows),
        attention: {
          queryStartLoc: this.queryStartLoc.upload(S + 1),
          seqLens: this.seqLens.upload(S),
          blockTables: this.blockTables.upload(S * width, [S, width]),
          scale: 1 / Math.sqrt(this.model.config.headDim),
          maxSeqLen,
          maxQueryLen,
        },
      },
      this.kv,
    );
  }

  dispose(): void {
    this.graphs?.dispose();
    for (const i of [
      this.tokenIds,
      this.positions,
      this.slotMapping,
      this.queryStartLoc,
      this.seqLens,
      this.blockTables,
      this.logitsIndices,
    ])
      i.dispose();
  }
}
