// The ops reporting to a profiler: opsWith(p) is the ops of lib/ops/index.ts with each registered op's call timed by
// `p` (a Profiler, lib/profiler.ts) and its arguments named from the registry. Nothing is installed: code that is given
// a profiler calls its ops through opsWith, code that is not calls them directly (LlamaModel.forward and the sampler
// take one; EngineCore passes its Profiler down to them through the runner while it profiles).
import { NULL_PROFILER, type OpProfiler } from '../calls.js';
import * as ops from './index.js';
import { opRegistry } from './registry.js';

/** The ops namespace (lib/ops/index.ts), as opsWith returns it. */
export type Ops = typeof ops;

const bound = new WeakMap<OpProfiler, Ops>();

/** The ops reporting to `p` (the plain ops for none or the null profiler); made once per profiler. */
export function opsWith(p: OpProfiler | null | undefined): Ops {
  if (p === null || p === undefined || p === NULL_PROFILER) return ops;
  let o = bound.get(p);
  if (o === undefined) {
    const argNames = new Map(opRegistry().map((d) => [d.name, d.args.map((a) => a.name)]));
    const wrap = ([name, v]: [string, unknown]) => {
      const names = argNames.get(name);
      if (names === undefined || typeof v !== 'function') return [name, v];
      const fn = v as (...args: unknown[]) => unknown;
      return [name, (...args: unknown[]) => p.op(name, names, fn, args)];
    };
    o = Object.fromEntries(Object.entries(ops).map(wrap)) as Ops;
    bound.set(p, o);
  }
  return o;
}
