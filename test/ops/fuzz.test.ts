// 10,000 seeded bad calls across the ops: each must throw a TypeError or RangeError that names the op and an
// argument, and the process must survive to compute correctly afterwards.
import { expect } from 'chai';

import { type DType, Tensor, ops } from '../lib/index.js';
import { native } from '../lib/native.js';
import * as ref from '../lib/reference/index.js';
import { TOL, expectClose, prng } from './helpers.js';

type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

/** An op's valid call, the names of its arguments, and which of them are tensors. */
interface OpSpec {
  name: string;
  argNames: string[];
  valid: () => unknown[];
  call: (args: unknown[]) => void;
  /** Per tensor-argument index: dims whose size is constrained (changing it must be rejected). */
  constrainedDims: Record<number, number[]>;
  /**
   * Per tensor-argument index: the dtype a valid call needs ('float' = same float dtype as the others,
   * 'anyFloat' = any float dtype, as linear's weight).
   */
  dtypeKind: Record<number, 'float' | 'anyFloat' | 'int32'>;
  /** Tensor arguments that may be null or undefined (rotaryEmbedding's key, linear's bias). */
  optional?: number[];
  /** Non-tensor arguments and values that are invalid for them. */
  badScalars: Record<number, unknown[]>;
  /** Any shape is valid (fillUniform): no rank or size mutations. */
  anyShape?: boolean;
}

const zeros = (shape: number[], dtype: DType = 'float32'): Tensor => Tensor.zeros(shape, { dtype });

const T = 3;
const H = 16;
const SPECS: OpSpec[] = [
  {
    name: 'rmsNorm',
    argNames: ['out', 'x', 'weight', 'eps'],
    valid: () => [zeros([T, H]), zeros([T, H]), zeros([H]), 1e-6],
    call: (a) => ops.rmsNorm(...(a as Parameters<typeof ops.rmsNorm>)),
    constrainedDims: { 0: [0, 1], 1: [0, 1], 2: [0] },
    dtypeKind: { 0: 'float', 1: 'float', 2: 'float' },
    badScalars: { 3: [0, -1e-6, NaN, Infinity, -Infinity, '1e-6', null, undefined, {}, 1n] },
  },
  {
    name: 'fusedAddRmsNorm',
    argNames: ['x', 'residual', 'weight', 'eps'],
    valid: () => [zeros([T, H]), zeros([T, H]), zeros([H]), 1e-5],
    call: (a) => ops.fusedAddRmsNorm(...(a as Parameters<typeof ops.fusedAddRmsNorm>)),
    constrainedDims: { 0: [0, 1], 1: [0, 1], 2: [0] },
    dtypeKind: { 0: 'float', 1: 'float', 2: 'float' },
    badScalars: { 3: [0, -1, NaN, Infinity, 'x', null, undefined, []] },
  },
  {
    name: 'rotaryEmbedding',
    argNames: ['positions', 'query', 'key', 'headSize', 'cosSinCache', 'isNeox'],
    valid: () => [Tensor.fromArray([0, 1, 2], [T], { dtype: 'int32' }), zeros([T, 4 * 8]), zeros([T, 2 * 8]), 8, ops.ropeCosSinCache(8, 16, 10000), true],
    call: (a) => ops.rotaryEmbedding(...(a as Parameters<typeof ops.rotaryEmbedding>)),
    // query/key width must stay a multiple of headSize (8): +1 breaks it; cache dim 1 is rotaryDim (<= 8, even)
    constrainedDims: { 0: [0], 1: [0, 1], 2: [0, 1], 4: [1] },
    dtypeKind: { 0: 'int32', 1: 'float', 2: 'float', 4: 'float' },
    badScalars: { 3: [0, -8, 7.5, NaN, Infinity, 2 ** 40, '8', null, undefined], 5: [1, 0, 'true', null, undefined, {}] },
    optional: [2],
  },
  {
    name: 'siluAndMul',
    argNames: ['out', 'x'],
    valid: () => [zeros([T, H]), zeros([T, 2 * H])],
    call: (a) => ops.siluAndMul(...(a as Parameters<typeof ops.siluAndMul>)),
    constrainedDims: { 0: [0, 1], 1: [0, 1] },
    dtypeKind: { 0: 'float', 1: 'float' },
    badScalars: {},
  },
  {
    name: 'linear',
    argNames: ['out', 'x', 'weight', 'bias'],
    valid: () => [zeros([T, 24]), zeros([T, H]), zeros([24, H], 'bfloat16'), zeros([24])],
    call: (a) => ops.linear(...(a as Parameters<typeof ops.linear>)),
    constrainedDims: { 0: [0, 1], 1: [0, 1], 2: [0, 1], 3: [0] },
    dtypeKind: { 0: 'float', 1: 'float', 2: 'anyFloat', 3: 'float' },
    badScalars: {},
    optional: [3],
  },
  {
    name: 'reshapeAndCache',
    argNames: ['key', 'value', 'keyCache', 'valueCache', 'slotMapping'],
    valid: () => [zeros([T, 2, 8]), zeros([T, 2, 8]), zeros([4, 16, 2, 8]), zeros([4, 16, 2, 8]), zeros([T], 'int32')],
    call: (a) => ops.reshapeAndCache(...(a as Parameters<typeof ops.reshapeAndCache>)),
    constrainedDims: { 0: [0, 1, 2], 1: [0, 1, 2], 2: [0, 1, 2, 3], 3: [0, 1, 2, 3], 4: [0] },
    dtypeKind: { 0: 'float', 1: 'float', 2: 'float', 3: 'float', 4: 'int32' },
    badScalars: {},
  },
  {
    name: 'embedding',
    argNames: ['out', 'ids', 'table'],
    valid: () => [zeros([T, H]), zeros([T], 'int32'), zeros([50, H])],
    call: (a) => ops.embedding(...(a as Parameters<typeof ops.embedding>)),
    constrainedDims: { 0: [0, 1], 1: [0], 2: [1] },
    dtypeKind: { 0: 'float', 1: 'int32', 2: 'float' },
    badScalars: {},
  },
  {
    name: 'gatherRows',
    argNames: ['out', 'x', 'indices'],
    valid: () => [zeros([2, H]), zeros([T, H]), zeros([2], 'int32')],
    call: (a) => ops.gatherRows(...(a as Parameters<typeof ops.gatherRows>)),
    constrainedDims: { 0: [0, 1], 1: [1], 2: [0] },
    dtypeKind: { 0: 'float', 1: 'float', 2: 'int32' },
    badScalars: {},
  },
  {
    name: 'add',
    argNames: ['out', 'a', 'b'],
    valid: () => [zeros([T, H]), zeros([T, H]), zeros([T, H])],
    call: (a) => ops.add(...(a as Parameters<typeof ops.add>)),
    constrainedDims: { 0: [0, 1], 1: [0, 1], 2: [0, 1] },
    dtypeKind: { 0: 'float', 1: 'float', 2: 'float' },
    badScalars: {},
  },
  {
    name: 'fillUniform',
    argNames: ['out', 'low', 'high', 'seed'],
    valid: () => [zeros([T, H]), -1, 1, 3],
    call: (a) => ops.fillUniform(...(a as Parameters<typeof ops.fillUniform>)),
    constrainedDims: {},
    anyShape: true,
    dtypeKind: { 0: 'anyFloat' },
    badScalars: { 1: [NaN, -Infinity, 1, 5, 'low'], 2: [NaN, Infinity, -1, -2, null], 3: [-1, 1.5, 2 ** 32, NaN, '3'] },
  },
];

const JUNK: unknown[] = [undefined, null, 0, 1.5, 'tensor', true, [], [1, 2], {}, { storage: {} }, () => 0, Symbol('t'), new Float32Array(4)];

/** One invalid call: the op, its arguments, and a description for the failure message. */
function mutate(rand: Rand, spec: OpSpec): { args: unknown[]; what: string; cleanup: Tensor[] } {
  const args = spec.valid();
  const tensors = args.filter((a): a is Tensor => a instanceof Tensor);
  const tensorIdx = args.flatMap((a, i) => (a instanceof Tensor ? [i] : []));
  const scalarIdx = Object.keys(spec.badScalars).map(Number);
  const kinds = ['junk', 'disposed', 'dtype', ...(spec.anyShape ? [] : ['rank', 'size']), 'missing', ...(scalarIdx.length ? ['scalar'] : [])];
  const kind = pick(rand, kinds);
  const i = pick(rand, tensorIdx);
  const t = args[i] as Tensor;
  const extra: Tensor[] = [];
  let what = '';
  switch (kind) {
    case 'junk': {
      const junk = pick(rand, JUNK);
      // an optional tensor (rotaryEmbedding's key, linear's bias) may legitimately be null/undefined
      args[i] = spec.optional?.includes(i) && (junk === null || junk === undefined) ? 'tensor' : junk;
      what = `${spec.argNames[i]} = ${String(args[i])}`;
      break;
    }
    case 'disposed':
      t.dispose();
      what = `${spec.argNames[i]} disposed`;
      break;
    case 'dtype': {
      const want = spec.dtypeKind[i]!;
      const wrong: DType[] = want === 'int32' ? ['float32', 'float16', 'bfloat16'] : want === 'anyFloat' ? ['int32'] : ['int32', 'float16', 'bfloat16'];
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

describe('fuzz: 10,000 seeded bad op calls', () => {
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
      expect(err instanceof TypeError || err instanceof RangeError, `${label} threw ${err.name}: ${err.message}`).to.equal(true);
      expect(err.message, label).to.include(spec.name);
      const named = spec.argNames.some((a) => new RegExp(`\\b${a}\\b`).test(err.message)) || /arguments/.test(err.message);
      expect(named, `${label}: message does not name an argument: ${err.message}`).to.equal(true);
      counts[err.name] = (counts[err.name] ?? 0) + 1;
      cleanup.forEach((t) => t.dispose());
    }
    expect((counts.TypeError ?? 0) + (counts.RangeError ?? 0)).to.equal(10_000);
    expect(counts.TypeError, 'both error kinds occur').to.be.above(1000);
    expect(counts.RangeError, 'both error kinds occur').to.be.above(1000);
  });

  it('positions out of range on the CPU throw before anything is written', () => {
    const rand = prng(7);
    for (let n = 0; n < 200; ++n) {
      const bad = pick(rand, [-1, 16, 17, 2 ** 31 - 1, -(2 ** 31)]);
      const positions = Tensor.fromArray([0, bad, 1], [3], { dtype: 'int32' });
      const q = Tensor.full([3, 8], 1);
      expect(() => ops.rotaryEmbedding(positions, q, null, 8, ops.ropeCosSinCache(8, 16, 10000), false)).to.throw(
        RangeError,
        /rotaryEmbedding: positions\[1\] = -?\d+ is outside \[0, 16\)/,
      );
      expect(Array.from(q.toArray()).every((v) => v === 1)).to.equal(true);
    }
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
    ];
    for (let n = 0; n < 500; ++n) {
      const bad = pick(rand, forged);
      const op = pick(rand, ['rmsNorm', 'siluAndMul', 'fill', 'copy', 'copyToHost'] as const);
      const w = { ...good, shape: [8], strides: [1] };
      const call = (): void => {
        if (op === 'rmsNorm') native.rmsNorm(good as never, bad as never, w as never, 1e-6);
        else if (op === 'siluAndMul') native.siluAndMul(bad as never, good as never);
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
      expect(error instanceof TypeError || error instanceof RangeError, `${op} with ${JSON.stringify(bad)}: ${String(error)}`).to.equal(true);
    }
    storage.free();
  });

  it('the process still computes correctly afterwards', () => {
    const x = Tensor.fromArray([1, 2, 3, 4], [1, 4]);
    const w = Tensor.full([4], 1);
    const out = Tensor.empty([1, 4]);
    ops.rmsNorm(out, x, w, 1e-6);
    expectClose(out.toArray(), ref.rmsNorm([1, 2, 3, 4], [1, 1, 1, 1], 1, 4, 1e-6, 'float32'), TOL.float32);
  });
});
