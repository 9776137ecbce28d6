// The engine's counters: one core's (EngineStats, counted by StepCounters over its steps), and with several
// data-parallel cores each core's own and their total.
import type { CoreState } from './core-client.js';
import type { CudaGraphStats } from './decode-graphs.js';
import type { SchedulerOutput } from './scheduler.js';

export interface EngineStats {
  memory: {
    /** 'cpu', or 'cuda:<index>'. */
    device: string;
    weightsBytes: number;
    /** Bytes of the K and V pools. */
    kvCacheBytes: number;
    blockSize: number;
    numBlocks: number;
    /** Held by a running sequence. usedBlocks + freeBlocks = numBlocks. */
    usedBlocks: number;
    freeBlocks: number;
    /** Of the free blocks, those still holding a cached prefix. */
    cachedBlocks: number;
    /** The most blocks held at once since the engine started (or resetPeaks). */
    peakUsedBlocks: number;
    /** The most bytes of live tensors the device held since the engine started or resetPeaks (weights, KV,
     * activations). */
    peakBytes: number;
  };
  scheduler: {
    running: number;
    waiting: number;
    /** Preemptions so far (a sequence preempted twice counts twice). */
    preempted: number;
  };
  /** In tokens, over every admission of a sequence (vLLM's counting). */
  prefixCache: { hits: number; queries: number; hitRate: number };
  /** Decode graphs (CUDA unless enforceEager): sizes captured, capture time, replays; null when every step is eager. */
  cudaGraphs: CudaGraphStats | null;
  throughput: {
    steps: number;
    promptTokens: number;
    generationTokens: number;
    /** Over the last 10 s. */
    promptTokensPerSecond: number;
    generationTokensPerSecond: number;
  };
}

const RATE_WINDOW_MS = 10_000;

/** What one core's steps add up to: steps, tokens, the rates over the last 10 s, the most blocks held at once. */
export class StepCounters {
  steps = 0;
  promptTokens = 0;
  generationTokens = 0;
  peakUsedBlocks = 0;
  private readonly recent: { at: number; prompt: number; generation: number }[] = [];

  /** Counts a step that ran `out` and sampled `generated` tokens, with `usedBlocks` held after it. */
  record(out: SchedulerOutput, generated: number, usedBlocks: number): void {
    if (usedBlocks > this.peakUsedBlocks) this.peakUsedBlocks = usedBlocks;
    ++this.steps;
    let prompt = 0; // prompt tokens computed in this step (recomputed output tokens of a preempted sequence are not)
    for (const s of out.scheduled)
      prompt += Math.max(0, Math.min(s.start + s.numTokens, s.seq.promptTokenIds.length) - s.start);
    this.promptTokens += prompt;
    this.generationTokens += generated;
    const now = performance.now();
    this.recent.push({ at: now, prompt, generation: generated });
    while (this.recent.length > 0 && this.recent[0]!.at < now - RATE_WINDOW_MS) this.recent.shift();
  }

  throughput(): EngineStats['throughput'] {
    let prompt = 0,
      generation = 0;
    for (const r of this.recent) {
      prompt += r.prompt;
      generation += r.generation;
    }
    const span = this.recent.length > 1 ? (this.recent.at(-1)!.at - this.recent[0]!.at) / 1000 : 0;
    return {
      steps: this.steps,
      promptTokens: this.promptTokens,
      generationTokens: this.generationTokens,
      promptTokensPerSecond: span > 0 ? prompt / span : 0,
      generationTokensPerSecond: span > 0 ? generation / span : 0,
    };
  }
}

/** One engine core, as getStats() reports it. */
export interface CoreReport {
  rank: number;
  state: CoreState;
  /** Why it died (state 'dead'). */
  error: string | null;
  /** Requests the dispatcher sent it that have not finished. */
  requests: number;
  /** Their prompt tokens still to compute and output tokens still to generate, as the dispatcher counts them. */
  outstandingTokens: number;
  /** The core's own counters; null unless it is ready. */
  stats: EngineStats | null;
}

/** The engine's total over its ready cores, and every core's report. */
export type EngineStatsTotal = EngineStats & { cores: CoreReport[] };

const sum = (list: EngineStats[], read: (s: EngineStats) => number) => list.reduce((a, s) => a + read(s), 0);

/**
 * Adds the cores' counters. Blocks, requests, tokens and rates add up (peakUsedBlocks as the sum of the cores' peaks,
 * which need not have come at once: an upper bound); memory.peakBytes is the process's (every core
 * reads the same process-wide count), so the total takes the largest; the graph counters are the first core's.
 */
export function totalStats(list: EngineStats[]): EngineStats {
  const first = list[0]!;
  if (list.length === 1) return first;
  const hits = sum(list, (s) => s.prefixCache.hits);
  const queries = sum(list, (s) => s.prefixCache.queries);
  return {
    memory: {
      device: [...new Set(list.map((s) => s.memory.device))].join(','),
      weightsBytes: sum(list, (s) => s.memory.weightsBytes),
      kvCacheBytes: sum(list, (s) => s.memory.kvCacheBytes),
      blockSize: first.memory.blockSize,
      numBlocks: sum(list, (s) => s.memory.numBlocks),
      usedBlocks: sum(list, (s) => s.memory.usedBlocks),
      freeBlocks: sum(list, (s) => s.memory.freeBlocks),
      cachedBlocks: sum(list, (s) => s.memory.cachedBlocks),
      peakUsedBlocks: sum(list, (s) => s.memory.peakUsedBlocks),
      peakBytes: Math.max(...list.map((s) => s.memory.peakBytes)),
    },
    scheduler: {
      running: sum(list, (s) => s.scheduler.running),
      waiting: sum(list, (s) => s.scheduler.waiting),
      preempted: sum(list, (s) => s.scheduler.preempted),
    },
    prefixCache: { hits, queries, hitRate: queries > 0 ? hits / queries : 0 },
    cudaGraphs: first.cudaGraphs,
    throughput: {
      steps: sum(list, (s) => s.throughput.steps),
      promptTokens: sum(list, (s) => s.throughput.promptTokens),
      generationTokens: sum(list, (s) => s.throughput.generationTokens),
      promptTokensPerSecond: sum(list, (s) => s.throughput.promptTokensPerSecond),
      generationTokensPerSecond: sum(list, (s) => s.throughput.generationTokensPerSecond),
    },
  };
}
