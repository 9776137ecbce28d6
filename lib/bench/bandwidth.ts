// The memory bandwidth the benchmarks compare against, measured in the same run:
//   CPU   a STREAM-like sum over 1 GiB of float32 on all the kernel threads (native.streamRead);
//   CUDA  a device-to-device copy of 1 GiB (read + write bytes), timed with CUDA events.
// Median of `reps` passes after one warm-up, in GB/s (10^9 bytes).
import type { Device } from '../dtype.js';
import { native } from '../native.js';
import { Tensor } from '../tensor.js';

export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

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

export function deviceCopyBandwidth(reps = 7): number {
  const deviceIndex = 0;
  const n = (1 << 30) / 4;
  using src = Tensor.empty([n], { device: 'cuda' });
  using dst = Tensor.empty([n], { device: 'cuda' });
  native.copy(dst, src);
  const times: number[] = [];
  for (let i = 0; i < reps; ++i) {
    native.timerStart(deviceIndex);
    native.copy(dst, src);
    times.push(native.timerStop(deviceIndex) / 1000);
  }
  return (2 * n * 4) / median(times) / 1e9;
}

/** The device's limit: what a decode step's weight reads are compared with. */
export function memoryBandwidth(device: Device, reps = 7): { kind: string; gbPerSecond: number } {
  return device === 'cuda'
    ? { kind: 'device-to-device copy, 1 GiB, read + write bytes', gbPerSecond: deviceCopyBandwidth(reps) }
    : { kind: 'STREAM-like read, 1 GiB float32, all threads', gbPerSecond: readBandwidth(reps) };
}
