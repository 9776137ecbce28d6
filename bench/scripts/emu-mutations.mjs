#!/usr/bin/env node
// Planted bugs in the CUDA kernels: each must make the CUDA suites fail under the emulated device, and the suites
// must pass again without it. Builds build-emu-mut/ (one .cu recompiles per mutation) and runs the CUDA halves of the
// suites that should catch it (bench/scripts/mutations.mjs is the harness).
//
//   node bench/scripts/emu-mutations.mjs OUT_DIR [--only <regex>]   (after npm run build; 1-2 minutes a mutation)
import { join } from 'node:path';
import { mocha, mutationRun, root, spawn } from './mutations.mjs';

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
  spawn(process.execPath, ['csrc/build.mjs', '--emu'], { ...process.env, MINI_VLLM_BUILD_DIR: 'build-emu-mut' });
// The CUDA suites of the files only (their CPU twins do not change); the sm_75 and split-K suites run on the emulated
// device only, under "(emulated)".
const cuda = (files) =>
  mocha(
    files,
    { MINI_VLLM_ADDON: join(root, 'build-emu-mut', 'Release', 'mini_vllm.node'), MINI_VLLM_REQUIRE_CUDA: '1' },
    ['--grep', 'on cuda|emulated'],
  );

mutationRun({
  mutations: MUTATIONS,
  defaultOut: 'emu-mutations-out',
  script: 'emu-mutations.mjs',
  build,
  test: cuda,
  clean: (files, built) => {
    built(build());
    return [cuda(files)];
  },
  tests: 'CUDA tests',
});
