// The step profiler: every op of a few engine steps as a Chrome / Perfetto trace (open it at ui.perfetto.dev or
// chrome://tracing), with op names and argument shapes. CPU ops are timed on the host (they run synchronously); on
// CUDA each op is also bracketed by CUDA events, which give its time on the device's stream in a second track, and by
// NVTX ranges, so Nsight Systems shows the same names.
import type { Device } from './dtype.js';
import { native, type NativeTensor } from './native.js';

/** One Chrome trace event ('X' complete, 'M' metadata); ts and dur in microseconds. */
export interface TraceEvent {
  name: string;
  cat?: string;
  ph: 'X' | 'M';
  ts?: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

export interface Trace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  metadata: { device: string; steps: number; startedAt: string };
}

/** The ops the profiler wraps, with their parameters' names (the trace shows each tensor as dtype[shape]). */
const OPS: Record<string, readonly string[]> = {
  rmsNorm: ['out', 'x', 'weight', 'eps'],
  fusedAddRmsNorm: ['x', 'residual', 'weight', 'eps'],
  rotaryEmbedding: ['positions', 'query', 'key', 'headSize', 'cosSinCache', 'isNeox'],
  siluAndMul: ['out', 'x'],
  reshapeAndCache: ['key', 'value', 'keyCache', 'valueCache', 'slotMapping'],
  pagedAttention: ['out', 'query', 'keyCache', 'valueCache', 'queryStartLoc', 'seqLens', 'blockTables', 'scale', 'maxSeqLen', 'maxQueryLen'],
  linear: ['out', 'x', 'weight', 'bias'],
  embedding: ['out', 'ids', 'table'],
  gatherRows: ['out', 'x', 'indices'],
  add: ['out', 'a', 'b'],
  copy: ['dst', 'src'],
  copyFromHost: ['dst', 'src'],
  copyToHost: ['src', 'dst'],
  fill: ['tensor', 'value'],
  fillUniform: ['out', 'low', 'high', 'seed'],
  sampleRows: ['logits', 'rows', 'vocab'],
};

function describeArg(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'object' && 'shape' in v && 'dtype' in v) {
    const t = v as NativeTensor;
    return `${t.dtype}[${t.shape.join(', ')}]`;
  }
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length: number }).length})`;
  return v;
}

const HOST_TID = 1;
const DEVICE_TID = 2;

/** The profiler recording now on this thread, if any. */
export function activeProfiler(): Profiler | null {
  return Profiler.active;
}

/**
 * Records the next `maxSteps` steps (a step is whatever `step()` brackets: EngineCore.step does). `start()` swaps
 * timed wrappers in for the ops; they are swapped out once the last step is recorded, or at `stop()`.
 */
export class Profiler {
  /** The one recording on this thread (activeProfiler() reads it). */
  static active: Profiler | null = null;
  readonly device: Device;
  readonly deviceIndex: number;
  readonly maxSteps: number;
  private readonly events: TraceEvent[] = [];
  private readonly deviceSpans: Array<{ name: string; a: number; b: number; args: Record<string, unknown> }> = [];
  private readonly saved = new Map<string, unknown>();
  private t0 = 0;
  private anchorEvent = -1;
  private steps = 0;
  private inStep = false;
  private startedAt = '';

  constructor(device: Device, deviceIndex = 0, maxSteps = 5) {
    if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new RangeError(`Profiler: maxSteps must be a positive integer, got ${maxSteps}`);
    this.device = device;
    this.deviceIndex = deviceIndex;
    this.maxSteps = maxSteps;
  }

  get stepsRecorded(): number {
    return this.steps;
  }

  get recording(): boolean {
    return this.saved.size > 0;
  }

  start(): void {
    if (Profiler.active !== null) throw new Error('Profiler: another profiler is already recording on this thread');
    Profiler.active = this;
    this.startedAt = new Date().toISOString();
    if (this.device === 'cuda') {
      native.synchronize(this.deviceIndex);
      native.profileReset(this.deviceIndex);
      this.anchorEvent = native.profileEvent(this.deviceIndex);
    }
    this.t0 = performance.now();
    this.wrap();
  }

  /** Runs `fn` with the op wrappers off, e.g. a CUDA graph capture, which must not record the profiler's events. */
  static paused<T>(fn: () => T): T {
    const p = Profiler.active;
    if (p === null || !p.recording) return fn();
    p.unwrap();
    try {
      return fn();
    } finally {
      p.wrap();
    }
  }

  private wrap(): void {
    const n = native as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const [name, params] of Object.entries(OPS)) {
      const inner = n[name]!;
      this.saved.set(name, inner);
      n[name] = (...a: unknown[]) => this.timed(name, 'op', () => inner(...a), () => {
        const args: Record<string, unknown> = {};
        a.forEach((v, i) => {
          args[params[i] ?? `arg${i}`] = describeArg(v);
        });
        return args;
      });
    }
  }

  /** Brackets one engine step; steps past maxSteps run unrecorded (and the op wrappers come off after the last). */
  step<T>(args: Record<string, unknown>, fn: () => T): T {
    if (!this.recording || this.inStep) return fn();
    this.inStep = true;
    try {
      return this.timed('step', 'step', fn, () => ({ index: this.steps, ...args }));
    } finally {
      this.inStep = false;
      if (++this.steps >= this.maxSteps) this.unwrap();
    }
  }

  /** One op the profiler does not wrap itself (a CUDA graph replay), timed and summarised like the wrapped ones. */
  op<T>(name: string, args: Record<string, unknown>, fn: () => T): T {
    if (!this.recording) return fn();
    return this.timed(name, 'op', fn, () => args);
  }

  /** A named range inside a step (schedule, forward, sample, ...). */
  range<T>(name: string, fn: () => T): T {
    if (!this.recording) return fn();
    return this.timed(name, 'phase', fn, () => ({}));
  }

  /** Stops recording and returns the trace (device times are read here, after the device has finished). */
  stop(): Trace {
    this.unwrap();
    if (Profiler.active === this) Profiler.active = null;
    const pid = 1;
    const events: TraceEvent[] = [
      { name: 'process_name', ph: 'M', pid, tid: HOST_TID, args: { name: `mini-vllm (${this.device})` } },
      { name: 'thread_name', ph: 'M', pid, tid: HOST_TID, args: { name: 'host' } },
      ...this.events,
    ];
    if (this.device === 'cuda' && this.deviceSpans.length > 0) {
      events.push({ name: 'thread_name', ph: 'M', pid, tid: DEVICE_TID, args: { name: `cuda:${this.deviceIndex} stream` } });
      for (const s of this.deviceSpans) {
        const start = native.profileElapsed(this.deviceIndex, this.anchorEvent, s.a);
        const dur = native.profileElapsed(this.deviceIndex, s.a, s.b);
        events.push({ name: s.name, cat: 'device', ph: 'X', ts: start * 1000, dur: dur * 1000, pid, tid: DEVICE_TID, args: s.args });
      }
    }
    return { traceEvents: events, displayTimeUnit: 'ms', metadata: { device: `${this.device}:${this.deviceIndex}`, steps: this.steps, startedAt: this.startedAt } };
  }

  private timed<T>(name: string, cat: string, fn: () => T, args: () => Record<string, unknown>): T {
    const cuda = this.device === 'cuda';
    let a = -1;
    if (cuda) {
      native.rangePush(name);
      a = native.profileEvent(this.deviceIndex);
    }
    const t = performance.now();
    try {
      return fn();
    } finally {
      const end = performance.now();
      const described = args();
      this.events.push({ name, cat, ph: 'X', ts: (t - this.t0) * 1000, dur: (end - t) * 1000, pid: 1, tid: HOST_TID, args: described });
      if (cuda) {
        this.deviceSpans.push({ name, a, b: native.profileEvent(this.deviceIndex), args: described });
        native.rangePop();
      }
    }
  }

  private unwrap(): void {
    const n = native as unknown as Record<string, unknown>;
    for (const [name, fn] of this.saved) n[name] = fn;
    this.saved.clear();
  }
}

export interface OpSummary {
  /** Which steps were summarised: the decode-only ones, or every step when there were none. */
  steps: 'decode' | 'all';
  numSteps: number;
  /** Mean time of one of those steps (ms). */
  stepMs: number;
  /** Per op name, slowest first: calls and time per step, and the share of the step. */
  ops: Array<{ name: string; callsPerStep: number; msPerStep: number; share: number }>;
  /** Where the times come from: the device's stream (CUDA events) or the host. */
  clock: 'device' | 'host';
}

/** Which ops a trace's steps spent their time in (the device track where there is one). */
export function summarizeTrace(trace: Trace): OpSummary {
  const x = trace.traceEvents.filter((e) => e.ph === 'X');
  const clock = x.some((e) => e.tid === DEVICE_TID) ? 'device' : 'host';
  const track = x.filter((e) => e.tid === (clock === 'device' ? DEVICE_TID : HOST_TID));
  const allSteps = track.filter((e) => e.name === 'step');
  const decode = allSteps.filter((e) => e.args?.['numSeqs'] !== undefined && e.args['numDecodes'] === e.args['numSeqs']);
  const steps = decode.length > 0 ? decode : allSteps;
  const byName = new Map<string, { calls: number; us: number }>();
  for (const s of steps) {
    for (const e of track) {
      if (e.cat !== 'op' || e.ts! < s.ts! || e.ts! + e.dur! > s.ts! + s.dur!) continue;
      const a = byName.get(e.name) ?? { calls: 0, us: 0 };
      a.calls += 1;
      a.us += e.dur!;
      byName.set(e.name, a);
    }
  }
  const n = Math.max(steps.length, 1);
  const stepUs = steps.reduce((t, s) => t + s.dur!, 0) / n;
  return {
    steps: decode.length > 0 ? 'decode' : 'all', numSteps: steps.length, stepMs: stepUs / 1000, clock,
    ops: [...byName].map(([name, a]) => ({ name, callsPerStep: a.calls / n, msPerStep: a.us / n / 1000, share: stepUs > 0 ? a.us / n / stepUs : 0 }))
      .sort((p, q) => q.msPerStep - p.msPerStep),
  };
}
