// 10,000 seeded bad calls across the ops, derived from the op registry (each op's example call, broken one argument
// at a time): each must throw a TypeError or RangeError that names the op and an argument, and the process must
// survive to compute correctly afterwards.
import { expect } from 'chai';

import { type DType, Tensor, ops } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { type ArgSpec, type NumberDomain, type OpDef, opRegistry, type TensorDType } from '../../lib/ops/registry.js';
import * as ref from '../../lib/reference/index.js';
import { TOL, expectClose, prng, describeEachCpuIsa } from '../helpers.js';

type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

/** An op's valid call, the names of its arguments, and which of them are tensors: derived from its registry entry. */
interface OpSpec {
  name: string;
  argNames: string[];
  valid: () => unknown[];
  call: (args: unknown[]) => void;
  /** Per tensor-argument index: dims whose size is tied to another argument (changing it must be rejected). */
  constrainedDims: Record<number, number[]>;
  /** Per tensor-argument index: the dtype a valid call needs. */
  dtypeKind: Record<number, TensorDType>;
  /** Tensor arguments that may be null or undefined (rotaryEmbedding's key, linear's bias). */
  optional: number[];
  /** Non-tensor arguments and values that are invalid for them. */
  badScalars: Record<number, unknown[]>;
  /** Any shape is valid (fillUniform): no rank or size mutations. */
  anyShape: boolean;
}

const NOT_A_NUMBER: unknown[] = [NaN, Infinity, -Infinity, '1', null, undefined, {}, 1n];
const BAD_NUMBERS: Record<NumberDomain, unknown[]> = {
  finite: NOT_A_NUMBER,
  positive: [...NOT_A_NUMBER, 0, -1e-6],
  positiveInteger: [...NOT_A_NUMBER, 0, -8, 7.5, 2 ** 40],
  uint32: [...NOT_A_NUMBER, -1, 1.5, 2 ** 32],
};

/**
 * A dim is tied when its name is a product (`2*d`, `numHeads*headSize`) or names a size another tensor argument also
 * has; a dim named once (embedding's vocabSize, gatherRows' numTokens) may take any size.
 */
function tiedDims(args: readonly ArgSpec[]): Record<number, number[]> {
  const uses = new Map<string, number>();
  const dimsOf = (a: ArgSpec) => ((a.kind === 'tensor' || a.kind === 'maybeTensor') && a.dims !== 'any' ? a.dims : []);
  for (const a of args) for (const d of dimsOf(a)) uses.set(d, (uses.get(d) ?? 0) + 1);
  const out: Record<number, number[]> = {};
  args.forEach((a, i) => {
    const tied = dimsOf(a).flatMap((d, j) => (!/^\w+$/.test(d) || uses.get(d)! > 1 ? [j] : []));
    if (tied.length > 0) out[i] = tied;
  });
  return out;
}

function specOf(def: OpDef): OpSpec {
  const dtypeKind: Record<number, TensorDType> = {};
  const badScalars: Record<number, unknown[]> = {};
  const optional: number[] = [];
  def.args.forEach((a, i) => {
    if (a.kind === 'tensor' || a.kind === 'maybeTensor') dtypeKind[i] = a.dtype;
    if (a.kind === 'maybeTensor') optional.push(i);
    if (a.kind === 'number') badScalars[i] = BAD_NUMBERS[a.domain];
    if (a.kind === 'boolean') badScalars[i] = [1, 0, 'true', null, undefined, {}];
    if (a.kind === 'object') badScalars[i] = [0, 'meta', null, undefined, true, {}];
  });
  const wrapper = (ops as unknown as Record<string, (...a: unknown[]) => unknown>)[def.name]!;
  return {
    name: def.name,
    argNames: def.args.map((a) => a.name),
    valid: () => def.example('cpu'),
    call: (args) => void wrapper(...args),
    constrainedDims: tiedDims(def.args),
    dtypeKind,
    optional,
    badScalars,
    anyShape: def.args.some((a) => a.kind === 'tensor' && a.dims === 'any'),
  };
}

// Every op with tensor arguments (sampleRows takes host arrays; its bad arguments are tested with the sampler).
const SPECS: OpSpec[] = opRegistry()
  .filter((d) => d.args.some((a) => a.kind === 'tensor'))
  .map(specOf);

const zeros = (shape: number[], dtype: DType = 'float32'): Tensor => Tensor.zeros(shape, { dtype });

const JUNK: unknown[] = [
  undefined,
  null,
  0,
  1.5,
  'tensor',
  true,
  [],
  [1, 2],
  {},
  { storage: {} },
  () => 0,
  Symbol('t'),
  new Float32Array(4),
];

/** One invalid call: the op, its arguments, and a description for the failure message. */
function mutate(rand: Rand, spec: OpSpec): { args: unknown[]; what: string; cleanup: Tensor[] } {
  const args = spec.valid();
  const tensors = args.flatMap((a) =>
    a instanceof Tensor
      ? [a]
      : a !== null && typeof a === 'object'
        ? Object.values(a).filter((t): t is Tensor => t instanceof Tensor)
        : [],
  );
  const tensorIdx = args.flatMap((a, i) => (a instanceof Tensor ? [i] : []));
  const scalarIdx = Object.keys(spec.badScalars).map(Number);
  const kinds = [
    'junk',
    'disposed',
    'dtype',
    ...(spec.anyShape ? [] : ['rank', 'size']),
    'missing',
    ...(scalarIdx.length ? ['scalar'] : []),
  ];
  const kind = pick(rand, kinds);
  // a size change picks a tensor with a tied dim (a free one, such as the cos/sin table's rows, may take any size)
  const i = pick(rand, kind === 'size' ? tensorIdx.filter((k) => spec.constrainedDims[k] !== undefined) : tensorIdx);
  const t = args[i] as Tensor;
  const extra: Tensor[] = [];
  let what = '';
  switch (kind) {
    case 'junk': {
      const junk = pick(rand, JUNK);
      // an optional tensor (rotaryEmbedding's key, linear's bias) may legitimately be null/undefined
      args[i] = spec.optional.includes(i) && (junk === null || junk === undefined) ? 'tensor' : junk;
      what = `${spec.argNames[i]} = ${String(args[i])}`;
      break;
    }
    case 'disposed':
      t.dispose();
      what = `${spec.argNames[i]} disposed`;
      break;
    case 'dtype': {
      const want = spec.dtypeKind[i]!;
      const wrong: DType[] =
        want === 'int32'
          ? ['float32', 'float16', 'bfloat16']
          : want === 'anyFloat'
            ? ['int32']
            : ['int32', 'float16', 'bfloat16'];
      const dtype = pick(rand, wrong);
      args[i] = zeros([...t.shape], dtype);
      extra.push(args[i] as Tensor);
      what = `${spec.argNames[i]} dtype ${dtype}`;
      break;
    }
    case 'rank': {
      const shape = rand() < 0.5 ? [...t.shape, 1] : t.shape.length > 1 ? [t.numel] : [1, ...t.shape, 2];
      args[i] = zeros(shape, t.dtype);
      extra.push(args[i] as Tensor);
      what = `${spec.argNames[i]} shape [${shape.join(', ')}]`;
      break;
    }
    case 'size': {
      const dims = spec.constrainedDims[i] ?? [];
      const shape = [...t.shape];
      const d = pick(rand, dims);
      shape[d] = shape[d]! + pick(rand, [1, 3]); // +1/+3 keeps widths off multiples of 8 and rotaryDim odd
      args[i] = zeros(shape, t.dtype);
      extra.push(args[i] as Tensor);
      what = `${spec.argNames[i]} shape [${shape.join(', ')}]`;
      break;
    }
    case 'missing': {
      const keep = Math.floor(rand() * (args.length - 1));
      args.length = keep; // drops at least the last argument
      what = `only ${keep} arguments`;
      break;
    }
    case 'scalar': {
      const j = pick(rand, scalarIdx);
      args[j] = pick(rand, spec.badScalars[j]!);
      what = `${spec.argNames[j]} = ${String(args[j])}`;
      break;
    }
  }
  return { args, what, cleanup: [...tensors, ...extra] };
}

describeEachCpuIsa('fuzz: 10,000 seeded bad op calls', () => {
  it('each throws a TypeError or RangeError naming the op and an argument', () => {
    const rand = prng(20261128);
    const counts: Record<string, number> = {};
    for (let n = 0; n < 10_000; ++n) {
      const spec = pick(rand, SPECS);
      const { args, what, cleanup } = mutate(rand, spec);
      let error: unknown;
      try {
        spec.call(args);
      } catch (e) {
        error = e;
      }
      const label = `call #${n}: ${spec.name} with ${what}`;
      expect(error, `${label} did not throw`).to.be.instanceOf(Error);
      const err = error as Error;
      expect(
        err instanceof TypeError || err instanceof RangeError,
        `${label} threw ${err.name}: ${err.message}`,
      ).to.equal(true);
      expect(err.message, label).to.include(spec.name);
      const named =
        spec.argNames.some((a) => new RegExp(`\\b${a}\\b`).test(err.message)) || /arguments/.test(err.message);
      expect(named, `${label}: message does not name an argument: ${err.message}`).to.equal(true);
      counts[err.name] = (counts[err.name] ?? 0) + 1;
      cleanup.forEach((t) => t.dispose());
    }
    expect((counts.TypeError ?? 0) + (counts.RangeError ?? 0)).to.equal(10_000);
    expect(counts.TypeError, 'both error kinds occur').to.be.above(1000);
    expect(counts.RangeError, 'both error kinds occur').to.be.above(1000);
  });

  it('forged tensor descriptors given straight to the addon throw, never read out of bounds', () => {
    const rand = prng(99);
    const storage = new native.Storage('cpu', 0, 64); // room for 16 float32
    const good = { storage, dtype: 'float32', shape: [2, 8], strides: [8, 1], offset: 0 };
    const forged: Record<string, unknown>[] = [
      { ...good, shape: [3, 8] }, // past the end
      { ...good, offset: 1 }, // past the end by one element
      { ...good, strides: [9, 1] },
      { ...good, shape: [2, 2 ** 31] },
      { ...good, strides: [2 ** 40, 1] },
      { ...good, shape: [-1, 8] },
      { ...good, shape: [NaN, 8] },
      { ...good, shape: [2.5, 8] },
      { ...good, strides: [8] },
      { ...good, strides: [-8, 1] },
      { ...good, offset: -4 },
      { ...good, dtype: 'float64' },
      { ...good, dtype: 7 },
      { ...good, shape: 'big' },
      { ...good, shape: new Array(9).fill(1), strides: new Array(9).fill(1) },
      { ...good, storage: {} },
      { ...good, storage: null },
      { ...good, storage: Object.create(native.Storage.prototype as object) as object },
      // the one-array layout a Tensor carries (lib/tensor.ts: nativeLayout), forged
      { ...good, nativeLayout: Float64Array.of(0, 2, 0, 3, 8, 8, 1) }, // past the end
      { ...good, nativeLayout: Float64Array.of(0, 2, 1, 2, 8, 8, 1) }, // past the end by one element
      { ...good, nativeLayout: Float64Array.of(0, 2, 0, 2, 8, 2 ** 40, 1) },
      { ...good, nativeLayout: Float64Array.of(0, 2, -4, 2, 8, 8, 1) },
      { ...good, nativeLayout: Float64Array.of(0, 2, 0, NaN, 8, 8, 1) },
      { ...good, nativeLayout: Float64Array.of(7, 2, 0, 2, 8, 8, 1) }, // no such dtype
      { ...good, nativeLayout: Float64Array.of(0, 3, 0, 2, 8, 8, 1) }, // ndim says more than it holds
      { ...good, nativeLayout: Float64Array.of(0, 9, 0, ...new Array<number>(18).fill(1)) },
      { ...good, nativeLayout: Float64Array.of(0.5, 2, 0, 2, 8, 8, 1) },
      { ...good, nativeLayout: Float64Array.of(0, 2) },
    ];
    for (let n = 0; n < 500; ++n) {
      const bad = pick(rand, forged);
      const op = pick(rand, ['rmsNorm', 'siluAndMul', 'fill', 'copy', 'copyToHost'] as const);
      const w = { ...good, shape: [8], strides: [1] };
      const call = (): void => {
        if (op === 'rmsNorm') native.ops.rmsNorm!(good, bad, w, 1e-6);
        else if (op === 'siluAndMul') native.ops.siluAndMul!(bad, good);
        else if (op === 'fill') native.fill(bad as never, 1);
        else if (op === 'copy') native.copy(good as never, bad as never);
        else native.copyToHost(bad as never, new Float32Array(16));
      };
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(
        error instanceof TypeError || error instanceof RangeError,
        `${op} with ${JSON.stringify(bad)}: ${String(error)}`,
      ).to.equal(true);
    }
    storage.free();
  });

  it("a Tensor's one-array layout is its own fields, cannot drift from them, and is not copied by a spread", () => {
    const t = Tensor.zeros([4, 6], { dtype: 'bfloat16' }).narrow(1, 2, 3);
    expect(Array.from(t.nativeLayout)).to.deep.equal([2, 2, 2, 4, 3, 6, 1]);
    expect(Object.isFrozen(t), 'a tensor is frozen: its offset cannot change under its layout').to.equal(true);
    expect(Object.keys(t)).to.not.include('nativeLayout');
    // a spread copy has no layout array, so the addon reads its (here out-of-bounds) fields
    const copy = { ...t, offset: 24 };
    expect(() => native.fill(copy, 1)).to.throw(RangeError, /reaches past its storage/);
    t.fill(1);
    t.dispose();
  });

  it('the process still computes correctly afterwards', () => {
    const x = Tensor.fromArray([1, 2, 3, 4], [1, 4]);
    const w = Tensor.full([4], 1);
    const out = Tensor.empty([1, 4]);
    ops.rmsNorm(out, x, w, 1e-6);
    expectClose(out.toArray(), ref.rmsNorm([1, 2, 3, 4], [1, 1, 1, 1], 1, 4, 1e-6, 'float32'), TOL.float32);
  });
});
