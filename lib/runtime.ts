// Process-wide controls: CPU threads and device synchronisation.
import type { Device } from './dtype.js';
import { type MemoryCount, backends, native } from './native.js';

/** Threads the CPU kernels use. */
export function numThreads(): number {
  return native.numThreads();
}

/** Sets the CPU kernels' thread count (0 = every core). MINI_VLLM_NUM_THREADS sets the starting value. */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}

/**
 * Waits until the device has finished all queued work. Throws a pending CUDA error, or a RangeError for bad
 * data found by a kernel (e.g. a position outside the RoPE cache). A no-op for the CPU, whose ops finish on return.
 */
export function synchronize(device: Device = 'cuda'): void {
  if (device === 'cuda' && backends().cuda.available) native.synchronize(0);
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
export function deviceMemory(deviceIndex = 0): { free: number; total: number } {
  return native.deviceMemory(deviceIndex);
}
