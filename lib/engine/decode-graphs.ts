// CUDA graphs for decode steps, as vLLM captures them. The forward pass of a batch of one-token sequences is recorded
// once per batch size on a ladder (1, 2, 4, 8, then every 16 up to the largest decode batch) and replayed as one
// launch instead of ~10 per layer, so small batches run at the GPU's pace rather than the host's. A batch of n runs
// the graph of the next size up; the rows past n are padding: slot -1 (nothing is cached), a one-token context, and
// their logits are dropped.
//
// On the CPU the graphs are CPU graphs (lib/cpu-graph.ts): the ops' arguments are read and checked once, and a replay
// runs the kernels without a call from JS each; they record without running, so each size is recorded on its first
// use, for the exact batch (padding costs a CPU compute, where a GPU has it for free), with no warm-up run.
//
// A graph bakes in every pointer, shape and grid, so:
//  - the step's inputs live in the runner's one static int32 buffer (step-inputs.ts), rewritten (host side) and
//    uploaded in one copy per step;
//  - attention is captured for the longest context (maxSeqLen = the block tables' capacity), which sizes its split-KV
//    grid; partitions past a sequence's context exit at once;
//  - the model's activation buffers are reserved for the largest step before capture, and each size is run once
//    eagerly before it is captured, so no buffer grows inside a capture;
//  - a buffer that moves anyway (the model's workspace, or the CUDA attention scratch) makes the graphs stale, and
//    each is captured again on its next use.
import { attentionScale } from '../model/config.js';
import { CpuGraph } from '../cpu-graph.js';
import { CudaGraph } from '../cuda-graph.js';
import type { KvCache, LlamaModel } from '../model/llama.js';
import { NULL_STEP_PROFILER, type StepProfiler } from '../profiler.js';
import { synchronize } from '../runtime.js';
import { Tensor } from '../tensor.js';
import type { ScheduledSequence } from './scheduler.js';
import type { StepInputs } from './step-inputs.js';

/** A recorded forward pass: replay() queues it again; false when it must be recorded again first. */
export interface CapturedGraph {
  replay(): boolean;
  dispose(): void;
}

/**
 * How graphs are recorded: CUDA stream capture (cudaGraphBackend) or CPU graphs (cpuGraphBackend) in the engine; tests
 * may substitute their own.
 */
export interface GraphBackend {
  /** 'cuda' or 'cpu', for the stats; a test's own backend leaves it out ('cuda' is reported). */
  readonly kind?: 'cuda' | 'cpu';
  /**
   * Capture records without running and needs no buffer sized beforehand by a warm-up run: each size is recorded when
   * first used (the activation buffers grown to it just before), and nothing is reserved up front.
   */
  readonly lazy?: boolean;
  capture<T>(fn: () => T): { graph: CapturedGraph; result: T };
}

/** Stream capture on cuda:deviceIndex (the engine's backend on CUDA). */
export function cudaGraphBackend(deviceIndex = 0): GraphBackend {
  return { kind: 'cuda', capture: (fn) => CudaGraph.capture(fn, deviceIndex) };
}

/** CPU graphs on this thread (the engine's backend on the CPU). */
export function cpuGraphBackend(): GraphBackend {
  return { kind: 'cpu', lazy: true, capture: (fn) => CpuGraph.capture(fn) };
}

/** The CPU's batch sizes: every size up to maxBatch, each recorded on first use, so no batch runs padding rows. */
export function cpuGraphCaptureSizes(maxBatch: number): number[] {
  if (!Number.isInteger(maxBatch) || maxBatch < 1)
    throw new RangeError(`cpuGraphCaptureSizes: maxBatch must be a positive integer, got ${maxBatch}`);
  return Array.from({ length: maxBatch }, (_, i) => i + 1);
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

export interface CudaGraphStats {
  /** CUDA graphs, or CPU graphs (lib/cpu-graph.ts) on the CPU. */
  kind: 'cuda' | 'cpu';
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
  private readonly inputs: StepInputs;
  private readonly graphs = new Map<number, Entry>();
  private captureMs = 0;
  private captures = 0;
  private replays = 0;

  /** `inputs`: the runner's step inputs, which the graphs read in place. Captures every size, largest first. */
  constructor(model: LlamaModel, kv: KvCache, backend: GraphBackend, sizes: readonly number[], inputs: StepInputs) {
    if (sizes.length === 0) throw new RangeError('DecodeGraphs: no batch sizes to capture');
    const sorted = [...new Set(sizes)].sort((a, b) => a - b);
    for (const s of sorted)
      if (!Number.isInteger(s) || s < 1)
        throw new RangeError(`DecodeGraphs: batch sizes must be positive integers, got ${s}`);
    this.sizes = sorted;
    this.model = model;
    this.kv = kv;
    this.backend = backend;
    this.inputs = inputs;
    if (backend.lazy) return;
    try {
      // the warm-up runs read all padding: nothing is cached, every context one token
      inputs.upload(inputs.stageDecode([], sorted.at(-1)!, kv.blockSize));
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
    return {
      kind: this.backend.kind ?? 'cuda',
      sizes: [...this.sizes],
      captureMs: this.captureMs,
      captures: this.captures,
      replays: this.replays,
    };
  }

  /**
   * Runs a decode batch (isUniformDecode) through the graph of the next size up; returns its logits, one row per
   * sequence in order (a view the next step overwrites), or null when the batch is larger than every graph.
   */
  run(seqs: readonly ScheduledSequence[], profiler: StepProfiler = NULL_STEP_PROFILER): Tensor | null {
    const size = graphSizeFor(this.sizes, seqs.length);
    if (size === null) return null;
    const n = this.inputs.stageDecode(seqs, size, this.kv.blockSize);
    this.inputs.upload(n, profiler);
    const found = this.graphs.get(size);
    let entry = found?.workspace === this.model.workspaceGeneration ? found : this.capture(size);
    const replay = () => {
      if (!entry.graph.replay()) {
        entry = this.capture(size);
        if (!entry.graph.replay())
          throw new Error(`DecodeGraphs: the graph of batch ${size} went stale right after its capture`);
      }
    };
    profiler.event(
      this.backend.kind === 'cpu' ? 'cpuGraphReplay' : 'cudaGraphReplay',
      { batch: size, numSeqs: seqs.length },
      replay,
    );
    ++this.replays;
    return entry.logits.narrow(0, 0, seqs.length);
  }

  /**
   * One eager forward pass of the size. The device buffer holds valid inputs: all padding at start, or the step being
   * run when a graph is recaptured (its K/V are then written twice, with the same values).
   */
  private runEagerly(size: number): void {
    const input = this.inputs.decodeInput(size, this.kv.blockSize, attentionScale(this.model.config));
    this.model.forward(input, this.kv);
    synchronize(this.model.device);
  }

  /**
   * Runs the size once eagerly (buffers reach their size, kernels load) unless just done, then records it. A lazy
   * backend runs nothing: the activation buffers are grown to the size, then it records.
   */
  private capture(size: number, warm = true): Entry {
    const t0 = performance.now();
    this.graphs.get(size)?.graph.dispose();
    this.graphs.delete(size);
    if (this.backend.lazy) this.model.reserve(size, size);
    else if (warm) this.runEagerly(size);
    const input = this.inputs.decodeInput(size, this.kv.blockSize, attentionScale(this.model.config));
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
  }
}
