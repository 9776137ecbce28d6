#!/usr/bin/env node
// Planted bugs: each mutation of a kernel must make the CUDA suites fail under the emulated device, and the suites
// must pass again without it. Builds build-emu-mut/ (one .cu recompiles per mutation), runs the CUDA halves of the
// suites that should catch it (all of them: the table says how many tests fail), and writes a Markdown table and a log.
//
//   node bench/scripts/emu-mutations.mjs OUT_DIR [--only <regex>]   (after npm run build; 1-2 minutes a mutation)
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = resolve(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'emu-mutations-out');
mkdirSync(out, { recursive: true });
const logFile = join(out, 'mutations.log');
writeFileSync(logFile, '');
const log = (s) => {
  appendFileSync(logFile, `${s}\n`);
  console.error(s);
};

// [name, file, code before, code after, test file(s)]
const MUTATIONS = [
  [
    'a dropped barrier (block_sum: partials read before every warp wrote its own)',
    'csrc/cuda/common.cuh',
    '  if (lane == 0) partial[warp] = v;\n  __syncthreads();',
    '  if (lane == 0) partial[warp] = v;',
    ['dist/test/ops/layernorm.test.js'],
  ],
  [
    'a swapped fragment register (GEMM: a1 and a2 of the A fragment)',
    'csrc/cuda/linear.cu',
    '        for (int j = 0; j < 4; ++j) mma16816<T>(acc[i][j], a[i], b[j]);',
    '        for (int j = 0; j < 4; ++j) {\n' +
      '          const uint32_t s[4] = {a[i][0], a[i][2], a[i][1], a[i][3]};\n' +
      '          mma16816<T>(acc[i][j], s, b[j]);\n' +
      '        }',
    ['dist/test/ops/linear.test.js'],
  ],
  [
    'an off-by-one in a context loop (decode: the last key is left out)',
    'csrc/cuda/attention_decode.cu',
    '  const int p0 = part * sp.chunk, p1 = min(ctx, p0 + sp.chunk);',
    '  const int p0 = part * sp.chunk, p1 = min(ctx - 1, p0 + sp.chunk);',
    ['dist/test/ops/attention.test.js'],
  ],
  [
    "a wrong stride (reshapeAndCache: value rows read with key's stride)",
    'csrc/cuda/cache.cu',
    '*reinterpret_cast<const P*>(value + t * val_s0 + h * val_s1 + c);',
    '*reinterpret_cast<const P*>(value + t * key_s0 + h * val_s1 + c);',
    ['dist/test/ops/cache.test.js'],
  ],
  [
    'a wrong rotary pairing (each style rotates the pairs of the other)',
    'csrc/cuda/pos_encoding.cu',
    '  const int xi = kNeox ? r : 2 * r;\n  const int yi = kNeox ? embed + r : 2 * r + 1;',
    '  const int xi = !kNeox ? r : 2 * r;\n  const int yi = !kNeox ? embed + r : 2 * r + 1;',
    ['dist/test/ops/pos-encoding.test.js'],
  ],
  [
    'a cache write that ignores slot -1 (padding tokens written before the pool)',
    'csrc/cuda/cache.cu',
    '  if (slot < 0) return;  // padding\n',
    '',
    ['dist/test/ops/cache.test.js'],
  ],
  [
    'a dropped barrier (prefill: the next K/V tile loaded while others still read this one)',
    'csrc/cuda/attention.cu',
    '    __syncthreads();  // the previous tile is no longer read\n',
    '',
    ['dist/test/ops/attention.test.js'],
  ],
  // The mistakes the tests of "Tests that catch a wrong kernel" were written against:
  [
    'the tensor-core prefill (16-bit) ignores Q·K: every score 0',
    'csrc/cuda/attention_prefill.cu',
    'float v = sc[j][e] * scale;',
    'float v = sc[j][e] * 0.f;',
    ['dist/test/ops/attention.test.js'],
  ],
  [
    "the tensor-core prefill reads K's dimensions permuted (halves of each 16 swapped)",
    'csrc/cuda/attention_prefill.cu',
    'ldmatrix_x4(r, ks + (jp * 16 + (lane & 7) + ((lane >> 4) << 3)) * P + (2 * kd + ((lane >> 3) & 1)) * 8);',
    'ldmatrix_x4(r, ks + (jp * 16 + (lane & 7) + ((lane >> 4) << 3)) * P + (2 * kd + 1 - ((lane >> 3) & 1)) * 8);',
    ['dist/test/ops/attention.test.js'],
  ],
  [
    'the decode kernel ignores Q·K: every score 0',
    'csrc/cuda/attention_decode.cu',
    'for (int i = 0; i < kLaneElems; ++i) sc += qr[g][i] * kf[i];',
    'for (int i = 0; i < kLaneElems; ++i) sc += 0.f * kf[i];',
    ['dist/test/ops/attention.test.js'],
  ],
  [
    "split-KV decode's reduce writes zeros (long contexts only)",
    'csrc/cuda/attention_decode.cu',
    'out[t * out_s0 + int64_t(h) * out_s1 + d] = from_f<T>(total > 0.f ? v / total : 0.f);',
    'out[t * out_s0 + int64_t(h) * out_s1 + d] = from_f<T>(0.f);',
    ['dist/test/ops/attention.test.js'],
  ],
  [
    "split-K's reduce drops the last split (a dropped term)",
    'csrc/cuda/linear.cu',
    'for (int s = 0; s < splits; ++s) sum += partial[(int64_t(s) * tokens + m) * out_f + n + e];',
    'for (int s = 0; s + 1 < splits; ++s) sum += partial[(int64_t(s) * tokens + m) * out_f + n + e];',
    ['dist/test/ops/linear.test.js'],
  ],
  [
    'the CUDA-core GEMM (sm_75, float32) leaves out the last k tile (an off-by-one length)',
    'csrc/cuda/linear.cu',
    '  for (int64_t k0 = 0; k0 < in_f; k0 += BK) {\n    // each thread loads 4 elements',
    '  for (int64_t k0 = 0; k0 + BK < in_f; k0 += BK) {\n    // each thread loads 4 elements',
    ['dist/test/ops/linear.test.js'],
  ],
  [
    "the quantised GEMV leaves out a row's last 32 values (an off-by-one length)",
    'csrc/cuda/quant.cu',
    'for (int64_t c = lane; c * 32 < in_f; c += 32) {',
    'for (int64_t c = lane; (c + 1) * 32 < in_f; c += 32) {',
    ['dist/test/ops/quant.test.js'],
  ],
];

const build = () =>
  stopped(
    spawnSync(process.execPath, ['csrc/build.mjs', '--emu'], {
      cwd: root,
      env: { ...process.env, MINI_VLLM_BUILD_DIR: 'build-emu-mut' },
      encoding: 'utf8',
    }),
  );
// The CUDA suites of the files only (their CPU twins do not change): --grep "on cuda|emulated" (the sm_75 and split-K
// suites run on the emulated device only), the first failure stops.
function runTests(files, seed) {
  const args = [
    '--expose-gc',
    'node_modules/mocha/bin/mocha.js',
    '--no-config',
    '--reporter',
    'spec',
    '--timeout',
    '600000',
    '--grep',
    'on cuda|emulated',
    ...files,
  ];
  const env = {
    ...process.env,
    MINI_VLLM_ADDON: join(root, 'build-emu-mut', 'Release', 'mini_vllm.node'),
    MINI_VLLM_REQUIRE_CUDA: '1',
    MINI_VLLM_EMU_SEED: String(seed),
  };
  const t0 = Date.now();
  const r = stopped(spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 28 }));
  const text = `${r.stdout}${r.stderr}`;
  const failing = /^\s+1\) (.+)\n\s+(.+)/m.exec(text.split(/\n\s+\d+ passing/)[1] ?? '');
  const passing = /(\d+) passing/.exec(text)?.[1] ?? '0';
  const failed = /(\d+) failing/.exec(text)?.[1] ?? '0';
  return {
    status: r.status,
    seconds: (Date.now() - t0) / 1000,
    text,
    caught: failing ? `${failing[1]} › ${failing[2]}` : null,
    passing,
    failed,
  };
}

// --only <regex>: the mutations whose name matches it (and the clean run)
// Every mutation's code must be where it says, before anything is built.
for (const [name, file, before] of MUTATIONS)
  if (!before || !readFileSync(join(root, file), 'utf8').includes(before))
    throw new Error(`${name}: the code to mutate is not in ${file}`);
// A mutation must start from the committed code, and an interrupted run must put the file back.
const dirty = [...new Set(MUTATIONS.map((m) => m[1]))].filter(
  (f) => spawnSync('git', ['diff', '--quiet', 'HEAD', '--', f], { cwd: root }).status,
);
if (dirty.length > 0)
  throw new Error(`these files differ from HEAD; commit or restore them first: ${dirty.join(', ')}`);
// Ctrl-C: this process ignores it (a handler would never run, the script is synchronous) while the child it reaches
// (the build or the tests) stops; a child stopped by a signal puts the file back and ends the run. A run killed
// otherwise leaves its mutation in place, and the next refuses to start until the file is restored.
process.on('SIGINT', () => {});
let restore = () => {};
const stopped = (r) => {
  if (!r.signal) return r;
  restore();
  console.error(`stopped by ${r.signal}; the mutated file is restored`);
  process.exit(130);
};

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
const rows = [];
for (const [name, file, before, after, files] of MUTATIONS.filter((m) => !only || new RegExp(only).test(m[0]))) {
  const path = join(root, file);
  const original = readFileSync(path, 'utf8');
  if (!original.includes(before)) throw new Error(`${name}: the code to mutate is not in ${file}`);
  writeFileSync(path, original.replace(before, after));
  restore = () => writeFileSync(path, original);
  try {
    log(`\n==== ${name} (${file})`);
    const b = build();
    if (b.status !== 0) throw new Error(`build failed:\n${b.stderr}`);
    const r = runTests(files, 0);
    log(r.text);
    const error = /^\s+(MiniVllmError|AssertionError|RangeError|Error)[^\n]*/m.exec(r.text)?.[0]?.trim() ?? '';
    const ran = `${r.failed} of ${Number(r.failed) + Number(r.passing)}`;
    rows.push({ name, file, caught: r.status !== 0, ran, by: r.caught, error, seconds: r.seconds });
  } finally {
    restore();
    restore = () => {};
  }
}
log('\n==== no mutation: the same suites pass');
const b = build();
if (b.status !== 0) throw new Error(`build failed:\n${b.stderr}`);
const clean = [...new Set(MUTATIONS.flatMap((m) => m[4]))];
const r = runTests(clean, 0);
log(r.text);

const md = [
  '| mutation | file | caught | CUDA tests failing | the first failing CUDA test | its error |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows.map((x) => {
    const error = x.error.slice(0, 160).replaceAll('|', '\\|');
    const by = (x.by ?? '-').replaceAll('|', '\\|');
    return `| ${x.name} | \`${x.file}\` | ${x.caught ? 'yes' : '**no**'} | ${x.ran} | ${by} | ${error} |`;
  }),
  '',
  `Without the mutations: ${r.status === 0 ? 'pass' : '**FAIL**'} (${r.passing} CUDA tests of ${clean.join(', ')}).`,
];
writeFileSync(join(out, 'mutations.md'), `${md.join('\n')}\n`);
console.log(md.join('\n'));
process.exit(rows.every((x) => x.caught) && r.status === 0 ? 0 : 1);
