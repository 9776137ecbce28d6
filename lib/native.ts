// Loads the addon and types its whole surface once; nothing else in the library touches the raw addon.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { DType, Device } from './dtype.js';
import { MiniVllmError, type MiniVllmErrorCode } from './errors.js';

/** One allocation on one device. Freed by `free()` or, failing that, when garbage collected. */
export interface NativeStorage {
  readonly disposed: boolean;
  readonly byteLength: number;
  readonly device: Device;
  readonly deviceIndex: number;
  free(): void;
}

/** An instantiated CUDA graph (opaque); freed by graphDestroy or when collected. */
export interface NativeGraph {
  readonly __nativeGraph: unique symbol;
}

/** A recorded CPU graph (opaque); freed by cpuGraphDestroy or when collected. */
export interface NativeCpuGraph {
  readonly __nativeCpuGraph: unique symbol;
}

/** What the addon reads from a tensor argument. */
export interface NativeTensor {
  readonly storage: NativeStorage;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  /**
   * The same layout in one array the addon reads at once: [dtype code, ndim, offset, ...shape, ...strides]. A Tensor
   * makes it once, non-enumerable (a spread copy has none, and the addon then reads the fields above).
   */
  readonly nativeLayout?: Float64Array;
}

export interface CpuBackend {
  /** Threads the CPU kernels use (MINI_VLLM_NUM_THREADS, or all cores). */
  threads: number;
  /**
   * The level of the CPU kernels in use: avx512, avx2 or scalar. The best of `isas`, unless MINI_VLLM_CPU_ISA (read at
   * load) or setCpuIsa() chose another.
   */
  isa: string;
  /** The levels this build holds that this machine runs, best first. */
  isas: string[];
  /** Every level this build holds, best first, whether or not this machine runs it. */
  builtIsas: string[];
  /** `isa`'s older name. */
  simd: string;
  /** The baseline the addon was built for (x86-64, x86-64-v3, native, ...): the lowest level's -march. */
  arch: string;
}

export interface CudaDevice {
  name: string;
  /** e.g. "9.0" */
  computeCapability: string;
  /** bytes */
  totalMemory: number;
  /** streaming multiprocessors */
  multiprocessors: number;
  /** the peak SM clock, MHz (0 where the runtime does not say) */
  clockMhz: number;
  /** the peak memory clock, MHz (double data rate: two transfers per clock) */
  memoryClockMhz: number;
  /** bits */
  memoryBusWidth: number;
}

export interface CudaBackend {
  /** The addon was built with the CUDA kernels. */
  compiled: boolean;
  /**
   * The CUDA kernels run on an emulated device, on the CPU (`npm run build:emu`): right results, no GPU speed. For
   * testing without a GPU (docs/testing.md).
   */
  emulated: boolean;
  /** A device can be used now. */
  available: boolean;
  devices: CudaDevice[];
  /** Why CUDA is not available: the runtime's own text, or the switch that disabled it. */
  error?: string;
  /** CUDA architectures the kernels were compiled for, comma separated. */
  archs: string;
  runtimeVersion?: number;
  driverVersion?: number;
}

export interface Backends {
  cpu: CpuBackend;
  cuda: CudaBackend;
}

export interface MemoryCount {
  /** Live allocations (Storage objects not yet freed). */
  allocations: number;
  bytes: number;
  /** The most `bytes` has been since resetPeakMemory() (or the start). */
  peakBytes: number;
}

/**
 * One op of the addon (`addon.ops`): it takes the arguments its lib/ops wrapper declares, and carries the contract the
 * C++ side declares (core/op_checks.h), which the registry test compares with the wrapper's.
 */
export type NativeOp = ((...args: unknown[]) => unknown) & {
  readonly argNames: readonly string[];
  readonly devices: readonly Device[];
};

/** The runtime functions of the addon: everything but the ops. */
export interface Runtime {
  memoryStats(): Record<Device, MemoryCount>;
  resetPeakMemory(): void;
  deviceMemory(deviceIndex: number): { free: number; total: number };
  backends(queryCuda?: boolean): Backends;
  setErrorClass(ctor: new (message: string, code: MiniVllmErrorCode) => Error): void;
  numThreads(): number;
  /** ownPool: the calling thread gets a pool of its own (runtime.ts). */
  setNumThreads(n: number, ownPool?: boolean): void;
  /** The CPU kernels' level from now on, for every thread: one of backends().cpu.isas (RangeError otherwise). */
  setCpuIsa(isa: string): void;
  // (function-valued properties: the tensor methods hand these to the profiler unbound; the addon never reads `this`)
  copyFromHost: (dst: NativeTensor, src: Float32Array | Int32Array) => void;
  copyToHost: (src: NativeTensor, dst: Float32Array | Int32Array) => void;
  copy: (dst: NativeTensor, src: NativeTensor) => void;
  fill: (t: NativeTensor, value: number) => void;
  synchronize(deviceIndex: number): void;
  timerStart(deviceIndex: number): void;
  timerStop(deviceIndex: number): number;
  /** CUDA: records one of the profiler's pooled events on the device's stream; returns its id. */
  profileEvent(deviceIndex: number): number;
  /** CUDA: milliseconds from event a to event b (waits for b). */
  profileElapsed(deviceIndex: number, a: number, b: number): number;
  /** CUDA: the event pool is reused from id 0. */
  profileReset(deviceIndex: number): void;
  /** NVTX range around what follows, for Nsight Systems (a no-op without CUDA). */
  rangePush(name: string): void;
  rangePop(): void;
  /** CUDA graphs: start recording the launches this thread queues on the device's stream. */
  graphBegin(deviceIndex: number): void;
  /** Ends the recording and instantiates it (throws when something in between was not capturable). */
  graphEnd(deviceIndex: number): NativeGraph;
  /** Drops a capture that failed, so the stream runs eagerly again. */
  graphAbort(deviceIndex: number): void;
  /** Launches the graph; false (nothing launched) when the attention scratch moved since the capture. */
  graphReplay(graph: NativeGraph): boolean;
  graphDestroy(graph: NativeGraph): void;
  /**
   * CPU graphs: from here, this thread's ops on CPU tensors are checked and recorded instead of run; allocating,
   * copying, filling, host-array ops and CUDA ops throw.
   */
  cpuGraphBegin(): void;
  /** Ends the recording; the graph holds the ops and keeps the storages they read alive. */
  cpuGraphEnd(): NativeCpuGraph;
  /** Drops a recording that failed. */
  cpuGraphAbort(): void;
  /** Runs the recorded ops in order. Throws if a storage they read was disposed. */
  cpuGraphReplay(graph: NativeCpuGraph): void;
  cpuGraphDestroy(graph: NativeCpuGraph): void;
  streamRead(x: NativeTensor): number;
  /** GFLOP/s of fp32 FMAs on every CPU thread for about `seconds` */
  fmaPeak(seconds: number): number;
  /** The emulated device's probes, for its own tests (test/emu); Unsupported in other builds. */
  emuProbe(name: string, args: number[]): number[];
}

/** The runtime functions' names: what the addon exports besides Storage and ops (the registry test checks both
 * ways). */
export const RUNTIME_FUNCTIONS = [
  'memoryStats',
  'resetPeakMemory',
  'deviceMemory',
  'backends',
  'setErrorClass',
  'numThreads',
  'setNumThreads',
  'setCpuIsa',
  'copyFromHost',
  'copyToHost',
  'copy',
  'fill',
  'synchronize',
  'timerStart',
  'timerStop',
  'profileEvent',
  'profileElapsed',
  'profileReset',
  'rangePush',
  'rangePop',
  'graphBegin',
  'graphEnd',
  'graphAbort',
  'graphReplay',
  'graphDestroy',
  'cpuGraphBegin',
  'cpuGraphEnd',
  'cpuGraphAbort',
  'cpuGraphReplay',
  'cpuGraphDestroy',
  'streamRead',
  'fmaPeak',
  'emuProbe',
] as const satisfies ReadonlyArray<keyof Runtime>;
// Compile-time: every Runtime function is in the list.
type Unlisted = Exclude<keyof Runtime, (typeof RUNTIME_FUNCTIONS)[number]>;
const everyRuntimeFunctionListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyRuntimeFunctionListed;

export interface Addon extends Runtime {
  Storage: new (device: Device, deviceIndex: number, byteLength: number) => NativeStorage;
  /** The ops, by name (lib/ops/registry.ts declares each). */
  ops: Readonly<Record<string, NativeOp | undefined>>;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function load(): Addon {
  const require = createRequire(import.meta.url);
  // MINI_VLLM_ADDON points at another build of the addon (e.g. the node-gyp one) without rebuilding.
  const explicit = process.env.MINI_VLLM_ADDON;
  const bindings = require('bindings') as (opts: { bindings: string; module_root: string }) => unknown;
  const addon = (explicit ? require(explicit) : bindings({ bindings: 'mini_vllm', module_root: packageRoot })) as Addon;
  addon.setErrorClass(MiniVllmError);
  return addon;
}

/** The loaded addon, typed. Only this module loads it; the ops reach `native.ops` through lib/ops/registry.ts. */
export const native: Addon = load();

/** The file the addon was loaded from. */
export function addonPath(): string {
  const cache = createRequire(import.meta.url).cache;
  const path = Object.keys(cache).find((k) => cache[k]?.exports === native);
  if (!path) throw new Error('mini-vllm: the loaded addon is not in the require cache');
  return path;
}

/** True when MINI_VLLM_DEVICE=cpu asks for the CPU only: CUDA is then neither queried nor used. */
export function cudaDisabledByEnv(): boolean {
  return (process.env.MINI_VLLM_DEVICE ?? '').trim().toLowerCase() === 'cpu';
}

let cached: Backends | undefined;

/** What this build and this machine can run. Asks the CUDA runtime once, then caches its answer. */
export function backends(): Backends {
  cached ??= native.backends(!cudaDisabledByEnv());
  // The CPU part is read afresh: its level and thread count can change (setCpuIsa, setNumThreads).
  return { ...structuredClone(cached), cpu: native.backends(false).cpu };
}

/**
 * The device to use when none is named: cuda when a GPU is available, else cpu. The emulated device (a build for
 * testing without a GPU) is used only when asked for by name: it gives CUDA's results at a fraction of the CPU's speed.
 */
export function defaultDevice(): Device {
  const cuda = backends().cuda;
  return cuda.available && !cuda.emulated ? 'cuda' : 'cpu';
}

/** Throws unless `device` can be used here; the message says why not. */
export function requireDevice(device: Device): void {
  if (device === 'cpu') return;
  const cuda = backends().cuda;
  if (!cuda.available)
    throw new MiniVllmError(`CUDA is not available: ${cuda.error ?? 'unknown reason'}`, 'ERR_UNSUPPORTED');
}
