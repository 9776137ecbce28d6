#!/usr/bin/env node
// Planted mistakes in the CPU kernels (csrc/cpu) and in the TypeScript references (lib/reference, lib/quant): each
// must make the tests that should catch it fail, and those tests must pass again without it. A kernel mistake is built
// into a CPU-only addon (build-cpu-mut/, one file recompiles) and tested with dist/; a reference mistake is compiled
// into dist-mut/ (the tests there import the mutated reference) and tested on the clean addon
// (bench/scripts/mutations.mjs is the harness).
//
//   node bench/scripts/cpu-mutations.mjs OUT_DIR [--only <regex>]     (after npm run build; ~30 s a mutation)
//   node bench/scripts/emu-mutations.mjs is the same for the CUDA kernels on the emulated device.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mocha, mutationRun, root, spawn } from './mutations.mjs';

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

// nvcc off PATH (as .ci/run's CPU-only build): a CPU-only addon, -march=native (what this machine runs)
const cpuPath = (process.env.PATH ?? '')
  .split(':')
  .filter((d) => !existsSync(join(d, 'nvcc')))
  .join(':');
const buildNative = () => {
  const env = { ...process.env, MINI_VLLM_BUILD_DIR: 'build-cpu-mut', PATH: cpuPath };
  delete env.CUDACXX;
  return spawn(process.execPath, ['csrc/build.mjs'], env);
};
// its own incremental state: sharing dist/'s, tsc can find dist-mut/ up to date and emit nothing
const buildTs = () =>
  spawn('npx', ['tsc', '-p', '.', '--outDir', 'dist-mut', '--tsBuildInfoFile', 'dist-mut/.tsbuildinfo']);
const isTs = (file) => file.endsWith('.ts');
// A reference mistake is tested on a clean addon: after a kernel mistake, the addon is built again without it first.
let addonMutated = true;
const build = (file) => {
  if (!isTs(file)) {
    addonMutated = true;
    return buildNative();
  }
  if (addonMutated) {
    const b = buildNative();
    if (b.status !== 0) return b;
    addonMutated = false;
  }
  return buildTs();
};
const run = (files, dist) =>
  mocha(
    files.map((f) => join(dist, f)),
    { MINI_VLLM_ADDON: join(root, 'build-cpu-mut', 'Release', 'mini_vllm.node') },
  );

mutationRun({
  mutations: MUTATIONS,
  defaultOut: 'cpu-mutations-out',
  script: 'cpu-mutations.mjs',
  build,
  test: (files, file) => run(files, isTs(file) ? 'dist-mut' : 'dist'),
  clean: (files, built) => {
    built(buildNative());
    built(buildTs());
    const runs = [run(files, 'dist'), run(files, 'dist-mut')];
    rmSync(join(root, 'dist-mut'), { recursive: true, force: true });
    return runs;
  },
  tests: 'tests',
});
