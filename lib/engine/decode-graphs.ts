// CUDA graphs for decode steps, as vLLM captures them. The forward pass of a batch of one-token sequences is recorded
// once per batch size on a ladder (1, 2, 4, 8, then every 16 up to the largest decode batch) and replayed as one
// launch instead of ~10 per layer, so small batches run at the GPU's pace rather than the host's. A batch of n runs
// the graph of the next size up; the rows past n are padding: slot -1 (nothing is cached), a one-token context, and
// their logits are dropped.
//
// A graph bakes in every pointer, shape and grid, so:
//  - the step's inputs live in one static int32 buffer, rewritten (host side) and uploaded in one copy per step;
//  - attention is captured for the longest context (maxSeqLen = the block tables' capacity), which sizes its split-KV
//    grid; partitions past a sequence's context exit at once;
//  - the model's activation buffers are reserved for the largest step before capture, and each size is run once
//    eagerly before it is captured, so no buffer grows inside a capture;
//  - a buffer that moves anyway (the model's workspace, or the CUDA attention scratch) makes the graphs stale, and
//    each is captured again on its next use.
import { CudaGraph } from '../cuda-graph.js';
import type { ForwardInput, KvCache, LlamaModel } from '../model/llama.js';
import { NULL_STEP_PROFILER, type StepProfiler } from '../profiler.js';
import { synchronize } from '../runtime.js';
import { Tensor } from '../tensor.js';
import type { ScheduledSequence } from './scheduler.js';

/** A recorded forward pass: replay() queues it again; false when it must be recorded again first. */
export interface CapturedGraph {
  replay(): boolean;
  dispose(): void;
}

/** How graphs are recorded: CUDA stream capture in the engine (cudaGraphBackend); tests may substitute their own. */
export interface GraphBackend {
  capture<T>(fn: () => T): { graph: CapturedGraph; result: T };
}

/** Stream capture on cuda:deviceIndex (the engine's backend). */
export function cudaGraphBackend(deviceIndex = 0): GraphBackend {
  return { capture: (fn) => CudaGraph.capture(fn, deviceIndex) };
}

/** The batch sizes captured by default: 1, 2, 4, 8, then every 16 up to maxBatch, and maxBatch itself. */
export function cudaGraphCaptureSizes(maxBatch: number): number[] {
  if (!Number.isInteger(maxBatch) || maxBatch < 1)
    throw new RangeError(`cudaGraphCaptureSizes: maxBatch must be a positive integer, got ${maxBatch}`);
  const sizes = [1, 2, 4, 8].filter((s) => s <= maxBatch);
  for (let s = 16; s <= maxBatch; s += 16) sizes.push(s);
  if (sizes.at(-1) !== maxBatch) sizes.push(maxBatch);
  return sizes;
}

/** The smallest captured size that holds n sequences (sizes ascending), or null when n is past the largest. */
export function graphSizeFor(sizes: readonly number[], n: number): number | null {
  for (const s of sizes) if (s >= n) return s;
  return null;
}

/** Whether a step can replay a decode graph: every sequence runs one token and samples it. */
export function isUniformDecode(seqs: readonly ScheduledSequence[]): boolean {
  return seqs.length > 0 && seqs.every((s) => s.numTokens === 1 && s.sample);
}

/**
 * The static inputs every decode graph reads, packed in one int32 buffer of M = maxBatch rows (host staging and its
 * device twin). A graph of size G reads the first G rows of each field, so one upload of the prefix up to the
 * end of its block tables feeds it:
 *
 *   tokenIds [M] | positions [M] | slotMapping [M] | seqLens [M] | logitsIndices [M] | queryStartLoc [M + 1] |
 *   blockTables [M, width]
 */
export class GraphInputs {
  readonly maxBatch: number;
  readonly width: number;
  readonly host: Int32Array;
  readonly device: Tensor;
  private readonly at: {
    tokenIds: number;
    positions: number;
    slotMapping: number;
    seqLens: number;
    logitsIndices: number;
    queryStartLoc: number;
    blockTables: number;
  };

  constructor(maxBatch: number, width: number, device: LlamaModel['device']) {
    const M = maxBatch;
    this.maxBatch = M;
    this.width = width;
    this.at = {
      tokenIds: 0,
      positions: M,
      slotMapping: 2 * M,
      seqLens: 3 * M,
      logitsIndices: 4 * M,
      queryStartLoc: 5 * M,
      blockTables: 6 * M + 1,
    };
    this.host = new Int32Array(6 * M + 1 + M * width);
    // Every row starts as padding; queryStartLoc and logitsIndices never change (row i is sequence i's one token).
    this.field('slotMapping', M).fill(-1);
    this.field('seqLens', M).fill(1);
    const li = this.field('logitsIndices', M),
      qsl = this.field('queryStartLoc', M + 1);
    for (let i = 0; i <= M; ++i) {
      if (i < M) li[i] = i;
      qsl[i] = i;
    }
    this.device = Tensor.fromArray(this.host, [this.host.length], { dtype: 'int32', device });
  }

  /** The host staging of one field's first n entries. */
  field(name: keyof GraphInputs['at'], n: number): Int32Array {
    return this.host.subarray(this.at[name], this.at[name] + n);
  }

  /**
   * Stages a decode batch into rows [0, seqs.length) and pads rows up to `size`; returns how many leading ints of the
   * buffer the graph of that size reads (what to upload).
   */
  stage(seqs: readonly ScheduledSequence[], size: number, blockSize: number): number {
    const S = seqs.length;
    if (S < 1 || S > size || size > this.maxBatch)
      throw new RangeError(
        `GraphInputs.stage: ${S} sequences do not fit a graph of ${size} (largest ${this.maxBatch})`,
      );
    const tok = this.field('tokenIds', size),
      pos = this.field('positions', size),
      slot = this.field('slotMapping', size);
    const lens = this.field('seqLens', size),
      tables = this.field('blockTables', size * this.width);
    for (let i = 0; i < S; ++i) {
      const { seq, start: p, numTokens } = seqs[i]!;
      const table = seq.blockTable;
      if (numTokens !== 1)
        throw new RangeError(`GraphInputs.stage: sequence ${i} runs ${numTokens} tokens; a decode graph runs one each`);
      if (table.length > this.width)
        throw new RangeError(
          `GraphInputs.stage: sequence ${i} has ${table.length} blocks, the tables hold ${this.width}`,
        );
      tok[i] = seq.tokenAt(p);
      pos[i] = p;
      slot[i] = table[Math.floor(p / blockSize)]! * blockSize + (p % blockSize);
      lens[i] = p + 1;
      // entries past the table are never read (attention stops at seqLens), so stale ones may stay
      tables.set(table, i * this.width);
    }
    for (let i = S; i < size; ++i) {
      tok[i] = 0;
      pos[i] = 0;
      slot[i] = -1;
      lens[i] = 1;
      tables[i * this.width] = 0;
    }
    return this.at.blockTables + size * this.width;
  }

  /** Copies the first n staged ints to the device in one transfer. */
  upload(n: number): void {
    this.device.narrow(0, 0, n).write(this.host.subarray(0, n));
  }

  /** The forward inputs of a graph of `size` rows: views of the device buffer, fixed for the graph's life. */
  forwardInput(size: number, blockSize: number, scale: number): ForwardInput {
    const v = (name: keyof GraphInputs['at'], n: number) => this.device.narrow(0, this.at[name], n);
    return {
      tokenIds: v('tokenIds', size),
      positions: v('positions', size),
      slotMapping: v('slotMapping', size),
      logitsIndices: v('logitsIndices', size),
      attention: {
        queryStartLoc: v('queryStartLoc', size + 1),
        seqLens: v('seqLens', size),
        blockTables: v('blockTables', size * this.width).view([size, this.width]),
        scale,
        maxSeqLen: this.width * blockSize,
        maxQueryLen: 1,
      },
    };
  }

  dispose(): void {
    this.device.dispose();
  }
}

export interface CudaGraphStats {
  /** Batch sizes with a graph, ascending. */
  sizes: number[];
  /** Wall time of the captures (warm-up runs included), ms. */
  captureMs: number;
  /** Captures so far: one per size at start, more if a buffer moved. */
  captures: number;
  /** Steps that ran a graph. */
  replays: number;
}

interface Entry {
  graph: CapturedGraph;
  logits: Tensor; // [size, vocab], a view of the model's output buffer
  workspace: number; // the model's workspace generation at capture
}

/** The decode graphs of one model and KV cache: captured up front, replayed by run(). */
export class DecodeGraphs {
  readonly sizes: readonly number[];
  private readonly model: LlamaModel;
  private readonly kv: KvCache;
  private readonly backend: GraphBackend;
  private readonly inputs: GraphInputs;
  private readonly graphs = new Map<number, Entry>();
  private captureMs = 0;
  private captures = 0;
  private replays = 0;

  /** `width`: block-table entries per sequence (the longest sequence's blocks). Captures every size, largest first. */
  constructor(model: LlamaModel, kv: KvCache, backend: GraphBackend, sizes: readonly number[], width: number) {
    if (sizes.length === 0) throw new RangeError('DecodeGraphs: no batch sizes to capture');
    const sorted = [...new Set(sizes)].sort((a, b) => a - b);
    for (const s of sorted)
      if (!Number.isInteger(s) || s < 1)
        throw new RangeError(`DecodeGraphs: batch sizes must be positive integers, got ${s}`);
    this.sizes = sorted;
    this.model = model;
    this.kv = kv;
    this.backend = backend;
    this.inputs = new GraphInputs(sorted.at(-1)!, width, model.device);
    try {
      // Every size runs once eagerly before any is captured: the device scratch (split-K GEMM partials, split-KV
      // attention partials) reaches its largest size first, so no later warm-up moves it under a captured graph.
      const t0 = performance.now();
      for (const s of [...sorted].reverse()) this.runEagerly(s);
      this.captureMs += performance.now() - t0;
      for (const s of [...sorted].reverse()) this.capture(s, false);
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  stats(): CudaGraphStats {
    return { sizes: [...this.sizes], captureMs: this.captureMs, captures: this.captures, replays: this.replays };
  }

  /**
   * Runs a decode batch (isUniformDecode) through the graph of the next size up; returns its logits, one row per
   * sequence in order (a view the next step overwrites), or null when the batch is larger than every graph.
   */
  run(seqs: readonly ScheduledSequence[], profiler: StepProfiler = NULL_STEP_PROFILER): Tensor | null {
    const size = graphSizeFor(this.sizes, seqs.length);
    if (size === null) return null;
    const n = this.inputs.stage(seqs, size, this.kv.blockSize);
    this.inputs.upload(n);
    let entry = this.graphs.get(size)!;
    if (entry.workspace !== this.model.workspaceGeneration) entry = this.capture(size);
    const replay = () => {
      if (!entry.graph.replay()) {
        entry = this.capture(size);
        if (!entry.graph.replay())
          throw new Error(`DecodeGraphs: the graph of batch ${size} went stale right after its capture`);
      }
    };
    profiler.event('cudaGraphReplay', { batch: size, numSeqs: seqs.length }, replay);
    ++this.replays;
    return entry.logits.narrow(0, 0, seqs.length);
  }

  /**
   * One eager forward pass of the size. The device buffer holds valid inputs: all padding at start, or the step being
   * run when a graph is recaptured (its K/V are then written twice, with the same values).
   */
  private runEagerly(size: number): void {
    const input = this.inputs.forwardInput(size, this.kv.blockSize, 1 / Math.sqrt(this.model.config.headDim));
    this.model.forward(input, this.kv);
    synchronize(this.model.device);
  }

  /** Runs the size once eagerly (buffers reach their size, kernels load) unless just done, then records it. */
  private capture(size: number, warm = true): Entry {
    const t0 = performance.now();
    this.graphs.get(size)?.graph.dispose();
    this.graphs.delete(size);
    if (warm) this.runEagerly(size);
    const input = this.inputs.forwardInput(size, this.kv.blockSize, 1 / Math.sqrt(this.model.config.headDim));
    const workspace = this.model.workspaceGeneration;
    const { graph, result: logits } = this.backend.capture(() => this.model.forward(input, this.kv));
    const entry: Entry = { graph, logits, workspace };
    this.graphs.set(size, entry);
    ++this.captures;
    this.captureMs += performance.now() - t0;
    return entry;
  }

  dispose(): void {
    for (const e of this.graphs.values()) e.graph.dispose();
    this.graphs.clear();
    this.inputs.dispose();
  }
}
