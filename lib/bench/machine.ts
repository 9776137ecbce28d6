// Where and what a benchmark ran: the machine (CPU, cores, memory, GPUs, the kernels' threads and SIMD) and the
// commit, for every report the benchmarks write.
import { execFileSync } from 'node:child_process';
import { cpus, platform, release, totalmem } from 'node:os';
import type { CudaDevice } from '../native.js';
import { backends } from '../native.js';
import { PACKAGE_ROOT } from '../version.js';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryBytes: number;
  os: string;
  node: string;
  /** CUDA devices present: "name (sm X.Y, N GiB)". */
  gpus: string[];
  /** Threads the CPU kernels use, and the vector ISA and -march they were built for. */
  kernelThreads: number;
  simd: string;
  cpuArch: string;
}

export function machineInfo(): MachineInfo {
  const be = backends();
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryBytes: totalmem(),
    os: `${platform()} ${release()}`,
    node: process.version,
    gpus: be.cuda.available
      ? be.cuda.devices.map((d) => `${d.name} (sm ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(0)} GiB)`)
      : [],
    kernelThreads: be.cpu.threads,
    simd: be.cpu.simd,
    cpuArch: be.cpu.arch,
  };
}

/** One line: "Intel Xeon ..., 2 cores, 2 kernel threads (avx512, -march=native), 24 GiB, node v20". */
export function machineLine(m: MachineInfo): string {
  return (
    `${m.cpu}, ${m.cores} cores, ${m.kernelThreads} kernel threads (${m.simd}, -march=${m.cpuArch}), ` +
    `${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB, node ${m.node}${m.gpus.length ? `, ${m.gpus.join(', ')}` : ''}`
  );
}

/** The checkout's short commit ($MINI_VLLM_COMMIT where there is no git, as on a packed GPU machine), or null. */
export function gitCommit(): string | null {
  if (process.env.MINI_VLLM_COMMIT) return process.env.MINI_VLLM_COMMIT;
  try {
    return (
      execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim() || null
    );
  } catch {
    return null;
  }
}

/**
 * Dense f16/bf16 tensor-core FLOPs per SM per clock with fp32 accumulation, by compute capability, from NVIDIA's
 * published peaks (e.g. H100 SXM: 132 SMs x 1.83 GHz x 4096 = 989 TFLOP/s; A100: 108 x 1.41 GHz x 2048 = 312).
 */
const TENSOR_FLOPS_PER_SM_CLOCK: Record<string, number> = {
  '7.0': 1024,
  '7.5': 1024,
  '8.0': 2048,
  '8.6': 512,
  '8.9': 512,
  '9.0': 4096,
  '10.0': 8192,
};

export interface CudaPeaks {
  /** memory clock x 2 (double data rate) x bus width, GB/s; null where the runtime gave no clock */
  bandwidthGBs: number | null;
  /** SMs x the peak SM clock x FLOPs per SM per clock, GFLOP/s; null for an architecture not in the table */
  tensorGflops: number | null;
  /** how the two were computed, for the report */
  kind: string;
}

/** The device's peaks from its properties (at its peak clocks: sustained clocks are often lower). */
export function cudaPeaks(d: CudaDevice): CudaPeaks {
  const bw =
    d.memoryClockMhz > 0 && d.memoryBusWidth > 0 ? (d.memoryClockMhz * 1e6 * 2 * d.memoryBusWidth) / 8e9 : null;
  const perClock = TENSOR_FLOPS_PER_SM_CLOCK[d.computeCapability];
  const tf = perClock !== undefined && d.clockMhz > 0 ? (d.multiprocessors * d.clockMhz * 1e6 * perClock) / 1e9 : null;
  return {
    bandwidthGBs: bw,
    tensorGflops: tf,
    kind:
      `from the device properties: ${d.memoryBusWidth}-bit bus at ${d.memoryClockMhz} MHz x 2; ${d.multiprocessors} ` +
      `SMs at ${d.clockMhz} MHz x ${perClock ?? '?'} dense f16/bf16 FLOP/clock/SM (sm ${d.computeCapability})`,
  };
}
