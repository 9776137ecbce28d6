// The layer rule, kept as the file-size rule is: every file under lib/ belongs to one layer, and no file imports a file
// of a layer above its own (type-only imports included). The layers, bottom to top, are docs/architecture.md's.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Bottom to top. A folder ends in '/'; a file may import its own layer and any layer below. */
export const LAYERS: ReadonlyArray<{ name: string; members: readonly string[] }> = [
  { name: 'shared', members: ['dtype.ts', 'errors.ts', 'version.ts', 'host-memory.ts'] },
  { name: 'addon', members: ['native.ts'] },
  { name: 'tensors', members: ['runtime.ts', 'calls.ts', 'tensor.ts', 'rope.ts'] },
  { name: 'ops', members: ['ops/', 'profiler.ts', 'cuda-graph.ts', 'cpu-graph.ts'] },
  { name: 'quant', members: ['quant/'] },
  { name: 'formats', members: ['formats/'] },
  { name: 'tokenizer, sampling', members: ['tokenizer/', 'sampling/', 'structured/'] },
  { name: 'model', members: ['model/'] },
  { name: 'reference', members: ['reference/'] },
  { name: 'engine', members: ['engine/'] },
  { name: 'server, bench', members: ['server/', 'bench/'] },
  { name: 'cli', members: ['cli/', 'cli.ts'] },
  { name: 'package', members: ['index.ts'] },
];

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(ROOT, path)).isDirectory() ? files(path) : name.endsWith('.ts') ? [path] : [];
  });
}

/** The layer index of a path under lib/ (relative to lib/), or -1. */
function layerOf(path: string): number {
  return LAYERS.findIndex((l) => l.members.some((m) => (m.endsWith('/') ? path.startsWith(m) : path === m)));
}

/** Every relative import of a source text (static, type-only, re-exports and dynamic import()), as lib/ paths. */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)'(\.{1,2}\/[^']+)'/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text))
    out.push(normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
  return out;
}

/** The imports that go up a layer: "from -> to (layer -> layer)". */
function upward(sources: ReadonlyArray<{ path: string; text: string }>): string[] {
  const bad: string[] = [];
  for (const { path, text } of sources) {
    const from = layerOf(path);
    for (const to of importsOf(path, text)) {
      const l = layerOf(to);
      if (l > from) bad.push(`${path} -> ${to} (${LAYERS[from]!.name} -> ${LAYERS[l]!.name})`);
    }
  }
  return bad;
}

describe('the layer rule', () => {
  const sources = files('lib').map((f) => ({
    path: relative('lib', f),
    text: readFileSync(join(ROOT, f), 'utf8'),
  }));

  it('every file under lib/ belongs to one layer', () => {
    expect(sources.length).to.be.above(100);
    expect(sources.filter((s) => layerOf(s.path) < 0).map((s) => s.path)).to.deep.equal([]);
  });

  it('no file imports a layer above its own', () => {
    expect(upward(sources)).to.deep.equal([]);
  });

  it('the check sees an upward import, a type-only one and a dynamic one', () => {
    const made = [
      { path: 'tensor.ts', text: "import { linear } from './ops/linear.js';" },
      { path: 'formats/gguf.ts', text: "import type { LlamaConfig } from '../model/config.js';" },
      { path: 'model/llama.ts', text: "const e = await import('../engine/index.js');" },
      { path: 'engine/scheduler.ts', text: "import { Sequence } from './sequence.js';" },
    ];
    expect(upward(made)).to.deep.equal([
      'tensor.ts -> ops/linear.ts (tensors -> ops)',
      'formats/gguf.ts -> model/config.ts (formats -> model)',
      'model/llama.ts -> engine/index.ts (model -> engine)',
    ]);
  });
});
