// The CPU levels' A/B for one op row: every level timed in the same moments. benny times one case at a time, so a row
// timed for 1.5 s under one level and then under the next compares two stretches of a machine whose speed drifts: on
// the 2-core VM these figures come from, identical machine code at two levels read 0.58 to 3.73 that way
// (bench/results/2026-12-07-cpu-round9/README.md). Here the levels take turns in short bursts instead.
import { setCpuIsa } from '../runtime.js';
import { median } from './bandwidth.js';

export interface LevelTiming {
  /** median seconds per call over the bursts */
  median: number;
  /** bursts timed */
  samples: number;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

/**
 * Median seconds per call of `run` under each of `isas`: bursts of about `burstSeconds` (the same number of calls
 * under every level, counted from a warm-up), the levels in turn within a round and in the reverse order in the next,
 * `rounds` rounds, or fewer (at least 5) where a call is so slow that they would take over `maxSeconds`. A burst's
 * time per call is one sample. Leaves the last level timed in use; the caller restores its own.
 */
export function timeLevelsInterleaved(
  run: () => void,
  isas: readonly string[],
  rounds: number,
  burstSeconds = 0.02,
  maxSeconds = 4,
): LevelTiming[] {
  // warm-up under every level (first calls grow per-thread scratch), then calls per burst from the first level's pace
  for (const isa of isas) {
    setCpuIsa(isa);
    run();
  }
  setCpuIsa(isas[0]!);
  let calls = 0;
  const t0 = now();
  while (now() - t0 < 2 * burstSeconds || calls < 2) {
    run();
    ++calls;
  }
  const perBurst = Math.max(1, Math.round((calls * burstSeconds) / (now() - t0)));
  const samples: number[][] = isas.map(() => []);
  const forward = isas.map((_, i) => i);
  const backward = [...forward].reverse();
  const start = now();
  for (let r = 0; r < rounds && (r < 5 || now() - start < maxSeconds); ++r)
    for (const li of r % 2 ? backward : forward) {
      setCpuIsa(isas[li]!);
      const t = now();
      for (let i = 0; i < perBurst; ++i) run();
      samples[li]!.push((now() - t) / perBurst);
    }
  return samples.map((s) => ({ median: median(s), samples: s.length }));
}
