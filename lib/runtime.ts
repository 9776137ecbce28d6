// Process-wide controls: CPU threads, device synchronisation, memory counters, and what memory the process can get.
import type { Device } from './dtype.js';
import { gib, hostMemory } from './host-memory.js';
import { type MemoryCount, backends, native } from './native.js';

/** Threads the CPU kernels use. */
export function numThreads(): number {
  return native.numThreads();
}

/**
 * Sets the CPU kernels' thread count (0 = every core). MINI_VLLM_NUM_THREADS sets the starting value. With
 * `ownPool`, the calling thread (a worker) gets a pool of its own instead, so its ops run beside other threads' rather
 * than queued behind them on the shared pool: each data-parallel engine core does this with its share of the cores.
 */
export function setNumThreads(n: number, opts: { ownPool?: boolean } = {}): void {
  native.setNumThreads(n, opts.ownPool === true);
}

/**
 * Makes `isa` (one of `backends().cpu.isas`) the level of the CPU kernels from now on, for every thread of the
 * process: tests and benchmarks compare the levels on one machine with it. MINI_VLLM_CPU_ISA picks one at load.
 */
export function setCpuIsa(isa: string): void {
  native.setCpuIsa(isa);
}

// The CUDA device this JS thread's tensors, synchronisations and graphs use: every worker thread has its own copy of
// this module, so a data-parallel engine core sets its rank's device once and everything it allocates lands there.
let currentDevice = 0;

/** The CUDA device index this thread allocates on (default 0). */
export function cudaDeviceIndex(): number {
  return currentDevice;
}

/** Makes `index` the CUDA device this thread's new tensors and synchronize() use. */
export function setCudaDeviceIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= 64)
    throw new RangeError(`setCudaDeviceIndex: index must be an integer in [0, 64), got ${index}`);
  currentDevice = index;
}

/**
 * Waits until the device has finished all queued work. Throws a pending CUDA error, or a RangeError for bad
 * data found by a kernel (e.g. a position outside the RoPE cache). A no-op for the CPU, whose ops finish on return.
 */
export function synchronize(device: Device = 'cuda'): void {
  if (device === 'cuda' && backends().cuda.available) native.synchronize(currentDevice);
}

/** Memory held by live tensors right now, per device (freed by dispose() or, later, by garbage collection). */
export function memoryStats(): Record<Device, MemoryCount> {
  return native.memoryStats();
}

/** Restarts every device's `peakBytes` (memoryStats) at what is held now. */
export function resetPeakMemory(): void {
  native.resetPeakMemory();
}

/** Free and total memory of a CUDA device as the driver counts it (all processes), in bytes. */
export function deviceMemory(deviceIndex = currentDevice): { free: number; total: number } {
  return native.deviceMemory(deviceIndex);
}

const MIB = 2 ** 20;
/** Left by memoryBudget for what the plan does not count (Node's heap, the tokenizer, the thread pool, page tables). */
const HOST_MARGIN_MIN = 256 * MIB;
const HOST_MARGIN_MAX = 2048 * MIB;
const HOST_MARGIN_SHARE = 0.05;
/** What the process may allocate now, and where that number came from (for a message). */
export interface MemoryBudget {
  /** Bytes the plan may use. */
  available: number;
  /** Where that came from, for the message. */
  source: string;
}

/**
 * What the process can allocate on `device` now. CPU: the host's available memory (the container's limit included)
 * less a safety margin. CUDA: `deviceShare` of the device (an engine's gpuMemoryUtilization) less what is already in
 * use. null where there is no CUDA device to ask (allocating then fails with its own error).
 */
export function memoryBudget(device: Device, deviceShare = 0.9): MemoryBudget | null {
  if (device === 'cpu') {
    const host = hostMemory();
    const margin = Math.min(HOST_MARGIN_MAX, Math.max(HOST_MARGIN_MIN, host.available * HOST_MARGIN_SHARE));
    return {
      available: Math.max(0, host.available - margin),
      source: `${host.source}, less a ${gib(margin)} safety margin`,
    };
  }
  if (!backends().cuda.available) return null;
  const { free, total } = deviceMemory();
  return {
    available: Math.max(0, Math.floor(total * deviceShare - (total - free))),
    source: `gpuMemoryUtilization ${deviceShare} of ${gib(total)}, less ${gib(total - free)} in use`,
  };
}
