// The op registry holds every layer to one declaration per op: the addon exports exactly the registered ops (and
// the runtime functions native.ts types), with the argument names and devices lib/ops declares; every op has its
// wrapper, reference, CPU and CUDA kernels, test and benchmark under its family's name; and every example runs,
// profiled under the declared argument names.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

import { type Device, ops } from '../../lib/index.js';
import { type NativeOp, RUNTIME_FUNCTIONS, native } from '../../lib/native.js';
import { type OpDef, opRegistry } from '../../lib/ops/registry.js';
import { opsWith } from '../../lib/ops/profiled.js';
import { Profiler } from '../../lib/profiler.js';
import * as ref from '../../lib/reference/index.js';
import { Tensor } from '../../lib/tensor.js';
import { describeKernel } from '../helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/-/g, '_');

/** Where an op's family lives in each layer (TypeScript names kebab-case, C++ snake_case). */
export function familyFiles(family: string): Record<string, string> {
  return {
    wrapper: `lib/ops/${family}.ts`,
    reference: `lib/reference/${family}.ts`,
    cpu: `csrc/cpu/${snake(family)}.cc`,
    cuda: `csrc/cuda/${snake(family)}.cu`,
    test: `test/ops/${family}.test.ts`,
    bench: `lib/bench/ops/${family}.bench.ts`,
  };
}

interface Layers {
  /** The addon's ops, by name. */
  addonOps: Readonly<Record<string, NativeOp | undefined>>;
  defs: readonly OpDef[];
  wrappers: Record<string, unknown>;
  references: Record<string, unknown>;
  /** A source file's text, or null where it does not exist. */
  read: (path: string) => string | null;
}

/** Every way the layers disagree with the registry, one line each; [] when they all agree. */
export function registryProblems({ addonOps, defs, wrappers, references, read }: Layers): string[] {
  const problems: string[] = [];
  const names = new Set(defs.map((d) => d.name));
  for (const name of Object.keys(addonOps))
    if (!names.has(name)) problems.push(`the addon exports ${name}, which the registry does not declare`);
  const checks = read('csrc/core/op_checks.h') ?? '';
  for (const def of defs) {
    const { name, family } = def;
    const exported = addonOps[name];
    if (!exported) problems.push(`${name} is declared but the addon does not export it`);
    else {
      const declared = def.args.map((a) => a.name);
      if (JSON.stringify(exported.argNames) !== JSON.stringify(declared))
        problems.push(
          `${name}: the addon takes (${exported.argNames.join(', ')}), the registry declares (${declared.join(', ')})`,
        );
      if (JSON.stringify(exported.devices) !== JSON.stringify(def.devices))
        problems.push(
          `${name}: the addon runs on ${exported.devices.join(', ')}, the registry declares ${def.devices.join(', ')}`,
        );
    }
    if (typeof wrappers[name] !== 'function') problems.push(`${name} has no wrapper in ops`);
    if (typeof references[name] !== 'function') problems.push(`${name} has no reference`);
    if (!checks.includes(`OP(${name}, ${snake(name)},`))
      problems.push(`${name} has no row in core/op_checks.h's op list`);
    const files = familyFiles(family);
    const expect = (what: string, path: string, text: string) => {
      const src = read(path);
      if (src === null) problems.push(`${name}: no ${what} (${path})`);
      else if (!src.includes(text)) problems.push(`${name}: ${path} does not contain "${text}"`);
    };
    expect('wrapper', files.wrapper!, `export function ${name}(`);
    expect('reference', files.reference!, `export function ${name}(`);
    expect('CPU kernel', files.cpu!, `${snake(name)}(`);
    if (def.devices.includes('cuda')) expect('CUDA kernel', files.cuda!, `${snake(name)}(`);
    expect('test', files.test!, `${name}(`);
    expect('benchmark', files.bench!, `ops.${name}(`);
  }
  return problems;
}

const real = (): Layers => ({
  addonOps: native.ops,
  defs: opRegistry(),
  wrappers: ops,
  references: ref,
  read: (path) => (existsSync(join(ROOT, path)) ? readFileSync(join(ROOT, path), 'utf8') : null),
});

describe('op registry', () => {
  it('declares every op once, in its family', () => {
    const defs = opRegistry();
    expect(defs.length).to.be.at.least(12);
    expect(new Set(defs.map((d) => d.name)).size).to.equal(defs.length);
    for (const d of defs) expect(d.family, d.name).to.match(/^[a-z]+(-[a-z]+)*$/);
  });

  it(
    'every layer agrees with it: exports, argument names, devices, wrappers, references, kernels, tests, ' +
      'benchmarks',
    () => {
      expect(registryProblems(real())).to.deep.equal([]);
    },
  );

  it('the addon exports nothing else: Storage, the ops, and the runtime functions native.ts types', () => {
    // (the `bindings` loader adds `path`, where it found the addon)
    const raw = Object.keys(native)
      .filter((k) => k !== 'path')
      .sort();
    expect(raw).to.deep.equal(['Storage', 'ops', ...RUNTIME_FUNCTIONS].sort());
  });

  it('the check fails when an export or a registry entry is missing, or an argument name differs', () => {
    const layers = real();
    const { rmsNorm: _, ...withoutExport } = layers.addonOps;
    expect(registryProblems({ ...layers, addonOps: withoutExport })).to.deep.equal([
      'rmsNorm is declared but the addon does not export it',
    ]);
    const defs = layers.defs.filter((d) => d.name !== 'add');
    expect(registryProblems({ ...layers, defs })).to.deep.equal([
      'the addon exports add, which the registry does not declare',
    ]);
    const renamed = layers.defs.map((d) =>
      d.name === 'linear' ? { ...d, args: d.args.map((a, i) => (i === 3 ? { ...a, name: 'b' } : a)) } : d,
    );
    expect(registryProblems({ ...layers, defs: renamed })).to.deep.equal([
      'linear: the addon takes (out, x, weight, bias), the registry declares (out, x, weight, b)',
    ]);
    const { gatherRows: _g, ...references } = layers.references;
    expect(registryProblems({ ...layers, references })).to.deep.equal(['gatherRows has no reference']);
    const read = (p: string) => (p === 'test/ops/add.test.ts' ? null : layers.read(p));
    expect(registryProblems({ ...layers, read })).to.deep.equal([
      'add: no test (test/ops/add.test.ts)',
      'sigmoidGatedAdd: no test (test/ops/add.test.ts)',
    ]);
  });
});

describeKernel('op registry examples', (device: Device) => {
  for (const def of opRegistry()) {
    if (!def.devices.includes(device)) continue;
    it(`${def.name}: its example runs, profiled as one op with the declared argument names`, () => {
      const args = def.example(device);
      const p = new Profiler(device, 0, 1);
      p.start();
      let trace;
      try {
        p.step(
          () => ({}),
          () => (opsWith(p) as unknown as Record<string, (...a: unknown[]) => unknown>)[def.name]!(...args),
        );
      } finally {
        trace = p.stop();
      }
      const events = trace.traceEvents.filter((e) => e.ph === 'X' && e.tid === 1 && e.name === def.name);
      expect(events).to.have.length(1);
      expect(Object.keys(events[0]!.args!)).to.deep.equal(def.args.map((a) => a.name));
      for (const a of args) {
        if (a instanceof Tensor) a.dispose();
        else if (a !== null && typeof a === 'object')
          for (const t of Object.values(a)) if (t instanceof Tensor) t.dispose();
      }
    });
  }
});
