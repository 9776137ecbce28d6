// The CPU's read bandwidth as the benchmarks compare against it: a STREAM-like sum over 1 GiB of float32 on all the
// kernel threads (native.streamRead), median of `reps` passes after one warm-up, in GB/s (10^9 bytes).
import { Tensor } from '../lib/index.js';
import { native } from '../lib/native.js';

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function readBandwidth(reps = 7): number {
  const n = (1 << 30) / 4;
  using buf = Tensor.full([n], 1);
  native.streamRead(buf);
  const times: number[] = [];
  for (let i = 0; i < reps; ++i) {
    const t = performance.now();
    native.streamRead(buf);
    times.push((performance.now() - t) / 1000);
  }
  return (n * 4) / median(times) / 1e9;
}
