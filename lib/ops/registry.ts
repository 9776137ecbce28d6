// The op registry: every op declared once, beside its wrapper in lib/ops/<family>.ts, by its signature (its arguments
// as the wrapper and the addon take them, with their dtypes and named dims), its family, the devices that run it, and
// a small valid call. The profiler names arguments from it, the argument fuzz derives its cases from it, and the
// registry test holds every layer to it: the addon's export, the wrapper, the reference, the kernels, the test and
// the benchmark of the family.
import type { Device } from '../dtype.js';
import { MiniVllmError } from '../errors.js';
import { native } from '../native.js';
import { Tensor, describeValue } from '../tensor.js';

/** Which dtypes a tensor argument takes: the op's one float dtype, any float dtype, or int32. */
export type TensorDType = 'float' | 'anyFloat' | 'int32';
/** Which numbers a number argument takes (a finer rule, such as low < high, is the op's own check). */
export type NumberDomain = 'finite' | 'positive' | 'positiveInteger' | 'uint32';

/**
 * One argument. `dims` names a tensor's dims: a name two arguments share (or a product such as `2*d`) is a size the
 * op ties to another; `'any'` takes any shape.
 */
export type ArgSpec =
  | { name: string; kind: 'tensor'; dtype: TensorDType; dims: readonly string[] | 'any' }
  | { name: string; kind: 'maybeTensor'; dtype: TensorDType; dims: readonly string[] }
  | { name: string; kind: 'number'; domain: NumberDomain }
  | { name: string; kind: 'boolean' }
  | { name: string; kind: 'object'; fields: readonly string[] }
  | { name: string; kind: 'hostArray'; type: 'Float32Array' | 'Int32Array' };

export interface OpDef {
  /** vLLM's name in camelCase: the addon's export, the wrapper, the reference. */
  readonly name: string;
  /** Names the op's file in every layer: lib/ops/<family>.ts, csrc/cpu/<family>.cc, test/ops/<family>.test.ts ... */
  readonly family: string;
  readonly devices: readonly Device[];
  /** The signature it was declared with, e.g. 'out: float[numTokens, hidden], a: float[numTokens, hidden], ...'. */
  readonly signature: string;
  readonly args: readonly ArgSpec[];
  /** A small valid call on `device` (the registry test runs it; the fuzz breaks it). */
  readonly example: (device: Device) => unknown[];
}

const DOMAINS: readonly string[] = ['finite', 'positive', 'positiveInteger', 'uint32'] satisfies NumberDomain[];

/** Splits at the commas outside brackets and braces. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; ++i) {
    const c = text[i]!;
    if (c === '[' || c === '{') ++depth;
    else if (c === ']' || c === '}') --depth;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  return [...parts, text.slice(start)].map((p) => p.trim());
}

/**
 * Parses an argument list written like a TypeScript signature with shapes: `name: type`, `name?: type` (a tensor that
 * may be null), where type is a tensor `float[dims]`, `anyFloat[dims]`, `int32[dims]` (`[*]`: any shape), a number
 * domain (`finite`, `positive`, `positiveInteger`, `uint32`), `boolean`, an object `{field, ...}`, or a host array
 * (`Float32Array`, `Int32Array`).
 */
export function parseSignature(signature: string): ArgSpec[] {
  return splitTop(signature).map((arg): ArgSpec => {
    const m = /^(\w+)(\?)?:\s*(.+)$/.exec(arg);
    if (!m) throw new Error(`op signature: cannot read argument "${arg}"`);
    const [, name, maybe, type] = m as unknown as [string, string, string | undefined, string];
    const t = /^(float|anyFloat|int32)\[(.*)\]$/.exec(type);
    if (t) {
      const dims = t[2] === '*' ? 'any' : splitTop(t[2]!).map((d) => d.replace(/\s/g, ''));
      if (!maybe) return { name, kind: 'tensor', dtype: t[1] as TensorDType, dims };
      if (dims !== 'any') return { name, kind: 'maybeTensor', dtype: t[1] as TensorDType, dims };
    }
    if (!maybe && DOMAINS.includes(type)) return { name, kind: 'number', domain: type as NumberDomain };
    if (!maybe && type === 'boolean') return { name, kind: 'boolean' };
    if (!maybe && type === 'Float32Array') return { name, kind: 'hostArray', type };
    if (!maybe && type === 'Int32Array') return { name, kind: 'hostArray', type };
    const o = /^\{(.*)\}$/.exec(type);
    if (!maybe && o) return { name, kind: 'object', fields: splitTop(o[1]!) };
    throw new Error(`op signature: unknown type "${type}" of ${name}`);
  });
}

/** Zero-filled float32 tensors of these shapes on `device`: the tensors of most ops' example calls. */
export function zeros(device: Device, ...shapes: number[][]): Tensor[] {
  return shapes.map((shape) => Tensor.zeros(shape, { device }));
}

/** A declared op as runOp calls it: its declaration, and what each call needs of it, worked out once. */
export interface RegisteredOp extends OpDef {
  readonly argNames: readonly string[];
  /** Argument indices the wrapper checks are Tensors (maybe: null allowed). */
  readonly tensors: ReadonlyArray<{ index: number; maybe: boolean }>;
  /** The addon's function, or one that says this build lacks it. */
  readonly fn: (...args: unknown[]) => unknown;
}

const registry = new Map<string, RegisteredOp>();

/**
 * Declares a family's ops, each by name with its signature and example call (each name once: a second declaration
 * throws). Returns the declarations, for the wrappers' runOp.
 */
export function defineOps<K extends string>(
  family: string,
  ops: Record<K, readonly [signature: string, example: (device: Device) => unknown[]]>,
  devices: readonly Device[] = ['cpu', 'cuda'],
): Record<K, RegisteredOp> {
  const out = {} as Record<K, RegisteredOp>;
  for (const name of Object.keys(ops) as K[]) {
    if (registry.has(name)) throw new Error(`defineOps: ${name} is declared twice`);
    const [signature, example] = ops[name];
    const args = parseSignature(signature);
    const missing = () => {
      throw new MiniVllmError(
        `${name}: this build of the addon has no such op (rebuild it: npm run build:native)`,
        'ERR_UNSUPPORTED',
      );
    };
    const tensors = args.flatMap((a, index) =>
      a.kind === 'tensor' || a.kind === 'maybeTensor' ? [{ index, maybe: a.kind === 'maybeTensor' }] : [],
    );
    const argNames = args.map((a) => a.name);
    const op: RegisteredOp = {
      name,
      family,
      devices,
      signature,
      args,
      example,
      argNames,
      tensors,
      fn: native.ops[name] ?? missing,
    };
    registry.set(name, op);
    out[name] = op;
  }
  return out;
}

/** Every declared op, in declaration order (lib/ops/index.ts imports every family). */
export function opRegistry(): OpDef[] {
  return [...registry.values()];
}

/**
 * Runs an op: checks that its tensor arguments are Tensors (the addon checks shapes, dtypes, devices and values), then
 * calls the addon (opsWith(p) in profiled.ts times the call). A maybe-tensor given as undefined is passed as null.
 */
export function runOp(op: RegisteredOp, args: unknown[]): unknown {
  for (const { index, maybe } of op.tensors) {
    const v = args[index];
    if (maybe && (v === null || v === undefined)) args[index] = null;
    else if (!(v instanceof Tensor))
      throw new TypeError(`${op.name}: ${op.argNames[index]} must be a Tensor, got ${describeValue(v)}`);
  }
  return op.fn(...args);
}
