// Where and what a benchmark ran: the machine (CPU, cores, memory, GPUs, the kernels' threads and SIMD) and the
// commit, for every report the benchmarks write.
import { execFileSync } from 'node:child_process';
import { cpus, platform, release, totalmem } from 'node:os';
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
