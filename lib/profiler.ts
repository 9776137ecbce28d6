// The step profiler: every op of a few engine steps as a Chrome / Perfetto trace (open it at ui.perfetto.dev or
// chrome://tracing), with op names and argument shapes. CPU ops are timed on the host (they run synchronously); on
// CUDA each op is also bracketed by CUDA events, which give its time on the device's stream in a second track, and by
// NVTX ranges, so Nsight Systems shows the same names. It is passed down, never installed: EngineCore hands its
// Profiler to the runner, which hands it to the forward pass and the sampler; they call their ops through opsWith(p)
// (lib/ops/profiled.ts) and their copies with it (lib/calls.ts). The profiler keeps no state outside its own object.
// A CUDA graph capture is given none, so its events are never recorded into a graph.
import type { Device } from './dtype.js';
import { native, type NativeTensor } from './native.js';
import { NULL_PROFILER, type OpProfiler } from './calls.js';

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

function describeArg(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'object' && 'shape' in v && 'dtype' in v) {
    const t = v as NativeTensor;
    return `${t.dtype}[${t.shape.join(', ')}]`;
  }
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length: number }).length})`;
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, describeArg(x)])); // pagedAttention's meta, ...
  return v;
}

const HOST_TID = 1;
const DEVICE_TID = 2;

/** What the engine calls around its steps: a recording Profiler, or NULL_STEP_PROFILER when not profiling. */
export interface StepProfiler extends OpProfiler {
  /** Brackets one engine step. */
  /** Brackets one engine step; `describe` (called after it, only when recording) gives the step's trace args. */
  step<T>(describe: () => Record<string, unknown>, fn: () => T): T;
  /** A named range inside a step (schedule, forward, sample, ...). */
  range<T>(name: string, fn: () => T): T;
  /** One event timed like an op that is not an op of the registry (a CUDA graph replay). */
  event<T>(name: string, args: Record<string, unknown>, fn: () => T): T;
}

/** Records nothing: every call just runs. */
export const NULL_STEP_PROFILER: StepProfiler = {
  ...NULL_PROFILER,
  step: (_describe, fn) => fn(),
  range: (_name, fn) => fn(),
  event: (_name, _args, fn) => fn(),
};

/**
 * Records the ops it is given (opsWith(p), a tensor copy given p, LlamaModel.forward(input, kv, p)) between `start()`
 * and `stop()`, until `maxSteps` steps have been recorded (a step is whatever `step()` brackets: EngineCore.step does).
 */
export class Profiler implements StepProfiler {
  readonly device: Device;
  readonly deviceIndex: number;
  readonly maxSteps: number;
  private readonly events: TraceEvent[] = [];
  private readonly deviceSpans: Array<{
    name: string;
    cat: string;
    a: number;
    b: number;
    args: Record<string, unknown>;
  }> = [];
  private t0 = 0;
  private anchorEvent = -1;
  private steps = 0;
  private inStep = false;
  private startedAt = '';
  private started = false;

  constructor(device: Device, deviceIndex = 0, maxSteps = 5) {
    if (!Number.isInteger(maxSteps) || maxSteps < 1)
      throw new RangeError(`Profiler: maxSteps must be a positive integer, got ${maxSteps}`);
    this.device = device;
    this.deviceIndex = deviceIndex;
    this.maxSteps = maxSteps;
  }

  get stepsRecorded(): number {
    return this.steps;
  }

  /** Started, not stopped, and steps left to record. */
  get recording(): boolean {
    return this.started && this.steps < this.maxSteps;
  }

  start(): void {
    if (this.started) throw new Error('Profiler: already recording (stop() first)');
    this.startedAt = new Date().toISOString();
    if (this.device === 'cuda') {
      native.synchronize(this.deviceIndex);
      native.profileReset(this.deviceIndex);
      this.anchorEvent = native.profileEvent(this.deviceIndex);
    }
    this.t0 = performance.now();
    this.started = true;
  }

  op<A extends unknown[], R>(name: string, argNames: readonly string[], fn: (...args: A) => R, args: A): R {
    if (!this.recording) return fn(...args);
    return this.timed(
      name,
      'op',
      () => fn(...args),
      () => {
        const described: Record<string, unknown> = {};
        args.forEach((v, i) => {
          described[argNames[i] ?? `arg${i}`] = describeArg(v);
        });
        return described;
      },
    );
  }

  /** Brackets one engine step; steps past maxSteps run unrecorded. */
  step<T>(describe: () => Record<string, unknown>, fn: () => T): T {
    if (!this.recording || this.inStep) return fn();
    this.inStep = true;
    try {
      return this.timed('step', 'step', fn, () => ({ index: this.steps, ...describe() }));
    } finally {
      this.inStep = false;
      ++this.steps;
    }
  }

  event<T>(name: string, args: Record<string, unknown>, fn: () => T): T {
    if (!this.recording) return fn();
    return this.timed(name, 'op', fn, () => args);
  }

  range<T>(name: string, fn: () => T): T {
    if (!this.recording) return fn();
    return this.timed(name, 'phase', fn, () => ({}));
  }

  /** Stops recording and returns the trace (device times are read here, after the device has finished). */
  stop(): Trace {
    this.started = false;
    const pid = 1;
    const events: TraceEvent[] = [
      { name: 'process_name', ph: 'M', pid, tid: HOST_TID, args: { name: `mini-vllm (${this.device})` } },
      { name: 'thread_name', ph: 'M', pid, tid: HOST_TID, args: { name: 'host' } },
      ...this.events,
    ];
    if (this.device === 'cuda' && this.deviceSpans.length > 0) {
      events.push({
        name: 'thread_name',
        ph: 'M',
        pid,
        tid: DEVICE_TID,
        args: { name: `cuda:${this.deviceIndex} stream` },
      });
      for (const s of this.deviceSpans) {
        const start = native.profileElapsed(this.deviceIndex, this.anchorEvent, s.a);
        const dur = native.profileElapsed(this.deviceIndex, s.a, s.b);
        events.push({
          name: s.name,
          cat: s.cat, // op, phase or step, as on the host track: summarizeTrace reads the ops from this track
          ph: 'X',
          ts: start * 1000,
          dur: dur * 1000,
          pid,
          tid: DEVICE_TID,
          args: s.args,
        });
      }
    }
    return {
      traceEvents: events,
      displayTimeUnit: 'ms',
      metadata: { device: `${this.device}:${this.deviceIndex}`, steps: this.steps, startedAt: this.startedAt },
    };
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
      this.events.push({
        name,
        cat,
        ph: 'X',
        ts: (t - this.t0) * 1000,
        dur: (end - t) * 1000,
        pid: 1,
        tid: HOST_TID,
        args: described,
      });
      if (cuda) {
        this.deviceSpans.push({ name, cat, a, b: native.profileEvent(this.deviceIndex), args: described });
        native.rangePop();
      }
    }
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
  const decode = allSteps.filter(
    (e) => e.args?.['numSeqs'] !== undefined && e.args['numDecodes'] === e.args['numSeqs'],
  );
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
    steps: decode.length > 0 ? 'decode' : 'all',
    numSteps: steps.length,
    stepMs: stepUs / 1000,
    clock,
    ops: [...byName]
      .map(([name, a]) => ({
        name,
        callsPerStep: a.calls / n,
        msPerStep: a.us / n / 1000,
        share: stepUs > 0 ? a.us / n / stepUs : 0,
      }))
      .sort((p, q) => q.msPerStep - p.msPerStep),
  };
}
