#!/usr/bin/env node
// Planted mistakes in the CPU kernels (csrc/cpu) and in the TypeScript references (lib/reference, lib/quant): each
// must make the tests that should catch it fail, and those tests must pass again without it. A kernel mistake is built
// into a CPU-only addon (build-cpu-mut/, one file recompiles); a reference mistake is compiled into dist-mut/ (the
// tests there import the mutated reference). The suites run whole: the table says how many of their tests fail, and
// which failed first. Writes a Markdown table and a log; exits 1 unless every mutation was caught and the clean run
// passed.
//
//   node bench/scripts/cpu-mutations.mjs OUT_DIR [--only <regex>]     (after npm run build; ~1 minute a mutation)
//   node bench/scripts/emu-mutations.mjs is the same for the CUDA kernels on the emulated device.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = resolve(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'cpu-mutations-out');
mkdirSync(out, { recursive: true });
const logFile = join(out, 'mutations.log');
writeFileSync(logFile, '');
const log = (s) => {
  appendFileSync(logFile, `${s}\n`);
  console.error(s);
};

const T = (f) => `test/${f}.test.js`;
const OPS = (f) => T(`ops/${f}`);
// [what is planted, file, code before, code after, test files (under dist/ or dist-mut/)]
const MUTATIONS = [
  // ---- CPU kernels
  [
    'attention ignores Q·K (every score 0: uniform weights)',
    'csrc/cpu/attention.cc',
    'for (int j = 0; j < kn; ++j) p[(g + i) * pld + t + j] = tmp[i * kn + j];',
    'for (int j = 0; j < kn; ++j) p[(g + i) * pld + t + j] = 0.f;',
    [OPS('attention')],
  ],
  [
    "attention reads the next KV head's keys in prefill (a swapped index)",
    'csrc/cpu/attention.cc',
    'load_row(s.k.data() + t * d, kc + base + t * slot + kvh * d, d);',
    'load_row(s.k.data() + t * d, kc + base + t * slot + ((kvh + 1) % sh.kv_heads) * d, d);',
    [OPS('attention')],
  ],
  [
    'attention without the causal mask inside a key block (prefill)',
    'csrc/cpu/attention.cc',
    'const int64_t visible = std::min(nk, pos + 1 - k0);',
    'const int64_t visible = std::min(nk, key_end - k0);',
    [OPS('attention')],
  ],
  [
    'attention leaves out the newest key (an off-by-one length)',
    'csrc/cpu/attention.cc',
    'const int64_t key_end = std::min<int64_t>(task.k_end, first_pos + task.q1);',
    'const int64_t key_end = std::min<int64_t>(task.k_end, first_pos + task.q1 - 1);',
    [OPS('attention')],
  ],
  [
    'attention scales q twice (a wrong scale)',
    'csrc/cpu/attention.cc',
    'for (int64_t i = 0; i < d; ++i) dst[i] *= sh.scale;',
    'for (int64_t i = 0; i < d; ++i) dst[i] *= sh.scale * sh.scale;',
    [OPS('attention')],
  ],
  [
    "split-KV merge without each part's rescaling (a dropped term)",
    'csrc/cpu/attention.cc',
    'const float w = std::exp(src[0] - mx);',
    'const float w = 1.f;',
    [OPS('attention')],
  ],
  [
    'GEMM drops the last row of every full micro-tile (rows 11, 23, ... at MR 12)',
    'csrc/cpu/gemm.h',
    '  if (mr == MR && nr == NR) {\n    for (int i = 0; i < MR; ++i)',
    '  if (mr == MR && nr == NR) {\n    for (int i = 0; i < MR - 1; ++i)',
    [OPS('linear')],
  ],
  [
    'quantised GEMV rounds x with amax / 128 (a wrong scale)',
    'csrc/cpu/quant_dots.h',
    '    o.d = amax / 127.f;\n    const __m256 id',
    '    o.d = amax / 128.f;\n    const __m256 id',
    [OPS('quant')],
  ],
  [
    'quantised GEMV truncates x instead of rounding it',
    'csrc/cpu/quant_dots.h',
    'q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(a[i], id));',
    'q[i] = _mm256_cvttps_epi32(_mm256_mul_ps(a[i], id));',
    [OPS('quant')],
  ],
  [
    "quantised GEMV drops the second half's offset of Q4/Q5 blocks (a dropped term)",
    'csrc/cpu/quant_dots.h',
    'off[m] += c * (xb.s0 + xb.s1);',
    'off[m] += c * xb.s0;',
    [OPS('quant')],
  ],
  [
    'quantised GEMV swaps the two scales of a Q6_K pair (a swapped index)',
    'csrc/cpu/quant_dots.h',
    'const float d0 = d * float(s[0]), d1 = d * float(s[1]);',
    'const float d0 = d * float(s[1]), d1 = d * float(s[0]);',
    [OPS('quant')],
  ],
  [
    "quantised GEMV drops half of a K block's min (Q4_K / Q5_K)",
    'csrc/cpu/quant_dots.h',
    'off[m] -= dm[j] * (xb.s0 + xb.s1);',
    'off[m] -= dm[j] * xb.s0;',
    [OPS('quant')],
  ],
  [
    'GEMM-path dequantiser of K blocks without the min',
    'csrc/cpu/quant.cc',
    'const float a = half_to_f32(b) * float(sc), c = -half_to_f32(b + 2) * float(mn);',
    'const float a = half_to_f32(b) * float(sc), c = 0.f;',
    [OPS('quant')],
  ],
  [
    'rmsNorm divides by hidden - 1 (an off-by-one length)',
    'csrc/cpu/layernorm.cc',
    'float inv = 1.0f / std::sqrt(sum_squares(xr, hidden) / float(hidden) + eps);',
    'float inv = 1.0f / std::sqrt(sum_squares(xr, hidden) / float(hidden - 1) + eps);',
    [OPS('layernorm')],
  ],
  [
    "SiLU's scalar tail with the wrong sign",
    'csrc/cpu/activation.cc',
    'out[i] = from_float<T>(round_to<T>(x / (1.0f + std::exp(-x))) * to_float(u[i]));',
    'out[i] = from_float<T>(round_to<T>(x / (1.0f + std::exp(x))) * to_float(u[i]));',
    [OPS('activation')],
  ],
  // ---- TypeScript references
  [
    'reference attention without the scale',
    'lib/reference/attention.ts',
    'scores[p] = dot * meta.scale;',
    'scores[p] = dot;',
    [OPS('attention')],
  ],
  [
    "reference attention's mask one position short",
    'lib/reference/attention.ts',
    'const pos = seqLen - qLen + j;',
    'const pos = seqLen - qLen + j - 1;',
    [OPS('attention')],
  ],
  [
    "reference Llama forward's GQA maps query heads to KV heads round-robin (a swapped index)",
    'lib/reference/llama.ts',
    'const kvh = Math.floor(head / group);',
    'const kvh = head % KV;',
    [T('hf-model'), T('model-golden')],
  ],
  [
    "reference Llama forward's RMSNorm over length - 1",
    'lib/reference/llama.ts',
    'const r = 1 / Math.sqrt(ss / x.length + eps);',
    'const r = 1 / Math.sqrt(ss / (x.length - 1) + eps);',
    [T('hf-model'), T('model-golden')],
  ],
  [
    'reference x rounding of the GEMV with amax / 128 (a wrong scale)',
    'lib/reference/quant.ts',
    'const d = Math.fround(amax / 127);',
    'const d = Math.fround(amax / 128);',
    [OPS('quant'), T('llama-cpp-files')],
  ],
  [
    'reference linear without the bias (a dropped term)',
    'lib/reference/linear.ts',
    'let acc = bias ? bias[n]! : 0;',
    'let acc = 0;',
    [OPS('linear')],
  ],
  [
    'reference float16 / bfloat16 rounding truncates (no round-half-even)',
    'lib/reference/dtype.ts',
    'const r = roundHalfEven(a / ulp) * ulp;',
    'const r = Math.floor(a / ulp) * ulp;',
    [OPS('quant'), OPS('embedding'), OPS('linear')],
  ],
  [
    "reference dequantiser swaps Q4_0 / Q4_1's nibbles (values 0-15 from the high ones)",
    'lib/quant/formats.ts',
    '        y[yo + l] = d * (b[qs + l]! & 0xf) + m;\n        y[yo + l + 16] = d * (b[qs + l]! >> 4) + m;',
    '        y[yo + l] = d * (b[qs + l]! >> 4) + m;\n        y[yo + l + 16] = d * (b[qs + l]! & 0xf) + m;',
    [OPS('quant'), T('llama-cpp-files')],
  ],
];

const run = (cmd, args, env = {}) =>
  stopped(spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 28 }));
// nvcc off PATH (as .ci/run's CPU-only build): a CPU-only addon, -march=native (what this machine runs)
const cpuPath = (process.env.PATH ?? '')
  .split(':')
  .filter((d) => !existsSync(join(d, 'nvcc')))
  .join(':');
const buildNative = () => {
  const env = { ...process.env, MINI_VLLM_BUILD_DIR: 'build-cpu-mut', PATH: cpuPath };
  delete env.CUDACXX;
  return stopped(
    spawnSync(process.execPath, ['csrc/build.mjs'], { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 28 }),
  );
};
const buildTs = () => run('npx', ['tsc', '-p', '.', '--outDir', 'dist-mut']);

function runTests(files, dist) {
  const args = ['--expose-gc', 'node_modules/mocha/bin/mocha.js', '--no-config', '--reporter', 'spec'];
  args.push('--timeout', '600000', ...files.map((f) => join(dist, f)));
  const t0 = Date.now();
  const r = run(process.execPath, args, { MINI_VLLM_ADDON: join(root, 'build-cpu-mut', 'Release', 'mini_vllm.node') });
  const text = `${r.stdout}${r.stderr}`;
  const failing = /^\s+1\) (.+)\n\s+(.+)/m.exec(text.split(/\n\s+\d+ passing/)[1] ?? '');
  return {
    status: r.status,
    seconds: (Date.now() - t0) / 1000,
    text,
    caught: failing ? `${failing[1]} › ${failing[2]}` : null,
    passing: /(\d+) passing/.exec(text)?.[1] ?? '0',
    failed: /(\d+) failing/.exec(text)?.[1] ?? '0',
  };
}

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
log(`==== the clean builds: build-cpu-mut/ (CPU only, native) and dist-mut/`);
for (const b of [buildNative(), buildTs()])
  if (b.status !== 0) throw new Error(`build failed:\n${b.stdout}${b.stderr}`);
for (const [name, file, before, after, files] of MUTATIONS.filter((m) => !only || new RegExp(only).test(m[0]))) {
  const path = join(root, file);
  const original = readFileSync(path, 'utf8');
  if (!before || !original.includes(before)) throw new Error(`${name}: the code to mutate is not in ${file}`);
  const ts = file.endsWith('.ts');
  writeFileSync(path, original.replace(before, after));
  restore = () => writeFileSync(path, original);
  try {
    log(`\n==== ${name} (${file})`);
    const b = ts ? buildTs() : buildNative();
    if (b.status !== 0) throw new Error(`build failed:\n${b.stdout}${b.stderr}`);
    const r = runTests(files, ts ? 'dist-mut' : 'dist');
    log(r.text);
    const error =
      /^\s+(MiniVllmError|AssertionError|RangeError|TypeError|Error)[^\n]*/m.exec(r.text)?.[0]?.trim() ?? '';
    const ran = `${r.failed} of ${Number(r.failed) + Number(r.passing)}`;
    rows.push({ name, file, caught: r.status !== 0, by: r.caught, error, seconds: r.seconds, ran });
  } finally {
    restore();
    restore = () => {};
  }
}
log('\n==== no mutation: the same suites pass, on the kernels (dist/) and on the references (dist-mut/)');
for (const b of [buildNative(), buildTs()])
  if (b.status !== 0) throw new Error(`build failed:\n${b.stdout}${b.stderr}`);
const clean = [...new Set(MUTATIONS.flatMap((m) => m[4]))];
const cleanRuns = [runTests(clean, 'dist'), runTests(clean, 'dist-mut')];
cleanRuns.forEach((r) => log(r.text));
rmSync(join(root, 'dist-mut'), { recursive: true, force: true });

const md = [
  '| mutation | file | caught | tests failing | the first failing test | its error |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows.map((x) => {
    const error = x.error.slice(0, 160).replaceAll('|', '\\|');
    const by = (x.by ?? '-').replaceAll('|', '\\|');
    return `| ${x.name} | \`${x.file}\` | ${x.caught ? 'yes' : '**no**'} | ${x.ran} | ${by} | ${error} |`;
  }),
  '',
  `Without the mutations: ${cleanRuns.every((r) => r.status === 0) ? 'pass' : '**FAIL**'} (${cleanRuns
    .map((r) => r.passing)
    .join(' and ')} tests of ${clean.join(', ')}, on the kernels and on the references).`,
];
writeFileSync(join(out, 'mutations.md'), `${md.join('\n')}\n`);
console.log(md.join('\n'));
process.exit(rows.every((x) => x.caught) && cleanRuns.every((r) => r.status === 0) ? 0 : 1);
