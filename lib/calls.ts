// What a profiler is to the native calls: something that runs one call, timing it if it records. Nothing is installed
// anywhere: whoever wants a call timed passes a profiler to it (ops: opsWith(p), lib/ops/profiled.ts; the tensors'
// copies and fills: their optional last argument), and EngineCore passes its Profiler (lib/profiler.ts) down through
// the runner to the model's forward pass and the sampler. It sits below lib/tensor.ts so that tensors need not import
// the ops.

/** What the ops and tensors need of a profiler: run one call, timing it if it records. */
export interface OpProfiler {
  /** Calls `fn(...args)` and returns its result; a recording profiler times it and names args by `argNames`. */
  op<A extends unknown[], R>(name: string, argNames: readonly string[], fn: (...args: A) => R, args: A): R;
}

/** The profiler that records nothing. */
export const NULL_PROFILER: OpProfiler = {
  op: (_name, _argNames, fn, args) => fn(...args),
};
