#!/usr/bin/env node
// How much of its bound each bounded check uses: runs the suites whose checks are per-element bounds derived from the
// kernels' arithmetic (expectWithin in test/helpers.ts) with MINI_VLLM_TEST_RATIOS set, then tabulates the largest
// |error| / bound per suite, device and dtype. A bound far above 1 is loose (a mistake could hide under it); above 1
// fails the test. Writes ratios.tsv and tolerance-audit.md to OUT_DIR.
//
//   node bench/scripts/tolerance-audit.mjs OUT_DIR [--emu]    (after npm run build; --emu: the CUDA halves too, on
//                                                              the emulated device, build-emu/)
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ARGS = scriptArgs(
  `usage: node bench/scripts/tolerance-audit.mjs [OUT_DIR] [--emu]   (after npm run build)
  How much of its bound each bounded check uses, per suite, device and dtype: ratios.tsv and tolerance-audit.md in
  OUT_DIR (default tolerance-audit-out). --emu: the CUDA halves too, on the emulated device (build-emu/).`,
  { allowPositionals: true, options: { emu: { type: 'boolean', default: false } } },
);
const out = resolve(ARGS.positionals[0] ?? 'tolerance-audit-out');
const emu = ARGS.values.emu;
mkdirSync(out, { recursive: true });
const ratios = join(out, 'ratios.tsv');
rmSync(ratios, { force: true });

const files = ['attention', 'quant'].map((f) => `dist/test/ops/${f}.test.js`);
const env = { ...process.env, MINI_VLLM_TEST_RATIOS: ratios };
if (emu)
  Object.assign(env, {
    MINI_VLLM_ADDON: join(root, 'build-emu', 'Release', 'mini_vllm.node'),
    MINI_VLLM_REQUIRE_CUDA: '1',
    MINI_VLLM_EMU_MEMORY: '4G',
  });
const mocha = ['--expose-gc', 'node_modules/mocha/bin/mocha.js', '--no-config', '--reporter', 'dot'];
const r = spawnSync(process.execPath, [...mocha, '--timeout', '600000', ...files], {
  cwd: root,
  env,
  encoding: 'utf8',
  stdio: ['ignore', 'inherit', 'inherit'],
});
if (r.status !== 0) process.exit(r.status ?? 1);

// "<suite> on <device> <title>" + label ("float16 out", "out") -> group by suite, device and dtype
const groups = new Map();
for (const line of readFileSync(ratios, 'utf8').trim().split('\n')) {
  const [title, label, ratio] = line.split('\t');
  const m = /^(\S+) on (cpu|cuda) (.*)$/.exec(title);
  if (!m) continue;
  const dtype = /(float32|float16|bfloat16)/.exec(`${label} ${m[3]}`)?.[1] ?? '?';
  const key = `${m[1]} | ${m[2]} | ${dtype}`;
  const g = groups.get(key) ?? { max: 0, n: 0, worst: '' };
  g.n++;
  if (Number(ratio) > g.max) [g.max, g.worst] = [Number(ratio), m[3]];
  groups.set(key, g);
}
const md = [
  '| suite | device | dtype | checks | largest error / bound | in |',
  '| --- | --- | --- | --- | --- | --- |',
  ...[...groups]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, g]) => `| ${k} | ${g.n} | ${g.max.toFixed(3)} | ${g.worst.replaceAll('|', '\\|')} |`),
];
writeFileSync(join(out, 'tolerance-audit.md'), `${md.join('\n')}\n`);
console.log(md.join('\n'));
