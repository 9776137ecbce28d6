// The engine's counters with several data-parallel cores: each core's own, and their total.
import type { CoreState } from './core-client.js';
import type { EngineStats } from './engine-core.js';

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
