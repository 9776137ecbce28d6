// How every native call reports to a profiler: the ops (lib/ops/registry.ts) and the tensors' copies and fills
// (lib/tensor.ts) go through `profiled`, which hands the call to the profiler installed now: the null one (it just
// calls) unless a caller installed another for a while (EngineCore for the steps it profiles, Profiler.start(), or a
// CUDA graph capture installing the null one). It sits below lib/tensor.ts so that tensors need not import the ops.

/** What the ops layer needs of a profiler: run one call, timing it if it records. */
export interface OpProfiler {
  /** Calls `fn(...args)` and returns its result; a recording profiler times it and names args by `argNames`. */
  op<A extends unknown[], R>(name: string, argNames: readonly string[], fn: (...args: A) => R, args: A): R;
}

/** The profiler that records nothing. */
export const NULL_PROFILER: OpProfiler = {
  op: (_name, _argNames, fn, args) => fn(...args),
};

let current: OpProfiler = NULL_PROFILER;

/** The profiler the ops layer reports to now (NULL_PROFILER when none records). */
export function currentProfiler(): OpProfiler {
  return current;
}

/** Gives the ops layer `p` until the returned function is called (which gives back the one it had before). */
export function useProfiler(p: OpProfiler): () => void {
  const before = current;
  current = p;
  return () => {
    current = before;
  };
}

/** Runs `fn` with the ops layer reporting to `p`. */
export function withProfiler<T>(p: OpProfiler, fn: () => T): T {
  const restore = useProfiler(p);
  try {
    return fn();
  } finally {
    restore();
  }
}

/** One native call, through the ops layer's profiler. */
export function profiled<A extends unknown[], R>(
  name: string,
  argNames: readonly string[],
  fn: (...args: A) => R,
  args: A,
): R {
  return current.op(name, argNames, fn, args);
}
