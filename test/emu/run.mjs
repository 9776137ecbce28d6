#!/usr/bin/env node
// npm run test:emu: the whole mocha suite against the emulated CUDA device (csrc/emu), CUDA required, so every
// test that runs on `cuda` where a GPU is present runs here on the CPU. Ends with mocha's "N passed, N failed,
// N skipped" line. docs/testing.md explains what emulation can and cannot tell.
//
//   npm run test:emu                           build (TypeScript, and the emulated addon when missing), run the suite
//   npm run test:emu -- --orders 1,2           the kernel suites under two seeded thread orders: same bits or exit 1
//                                              (and the emulator's own tests under each, outside the digest)
//   npm run test:emu -- --sanitize            the CUDA kernel suites and the argument fuzz, ASan + UBSan build
//   npm run test:emu -- [mocha args...]        e.g. a file list or --grep
//
// Environment: MINI_VLLM_EMU_SEED (thread order, 0 = index order), MINI_VLLM_EMU_THREADS, MINI_VLLM_EMU_MEMORY
// (default here 4G: the engine tests size their KV cache from it, and new memory is written through to poison it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../../bench/scripts/args.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = scriptArgs(
  `usage: npm run test:emu [-- --orders 1,2 | --sanitize | mocha args...]
  (none)            build (TypeScript, and the emulated addon when missing), run the whole suite, CUDA required
  --orders 1,2      the kernel suites under two seeded thread orders: same bits or exit 1
  --sanitize        the CUDA kernel suites and the argument fuzz, ASan + UBSan build
  mocha args        e.g. a file list or --grep; they go to mocha
Environment: MINI_VLLM_EMU_SEED, MINI_VLLM_EMU_THREADS, MINI_VLLM_EMU_MEMORY (default here 4G).`,
  {},
  { passThrough: true },
).positionals;
const take = (flag) => {
  const i = args.indexOf(flag);
  if (i < 0) return null;
  const [, value] = args.splice(i, 2);
  return value ?? '';
};
const orders = take('--orders');
const sanitize = args.includes('--sanitize') ? (args.splice(args.indexOf('--sanitize'), 1), true) : false;
const log = (...m) => console.error('test:emu:', ...m);

function run(cmd, argv, env = {}, stdio = 'inherit') {
  const r = spawnSync(cmd, argv, { cwd: root, stdio, env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.error) throw r.error;
  return r;
}

// TypeScript always (as `npm test` does); the addon when it is missing (npm run build:emu rebuilds it).
if (run('npm', ['run', '--silent', 'build'], {}, ['ignore', process.stderr, 'inherit']).status !== 0) process.exit(1);
const buildDir = sanitize ? 'build-emu-san' : 'build-emu';
const addon = join(root, buildDir, 'Release', 'mini_vllm.node');
if (!existsSync(addon)) {
  log(`building ${buildDir}/ (npm run build:emu${sanitize ? ' -- --sanitize' : ''})`);
  const flags = ['csrc/build.mjs', '--emu', ...(sanitize ? ['--sanitize'] : [])];
  if (run(process.execPath, flags, {}, ['ignore', process.stderr, 'inherit']).status !== 0) process.exit(1);
}

const env = {
  MINI_VLLM_ADDON: addon,
  MINI_VLLM_REQUIRE_CUDA: '1',
  MINI_VLLM_EMU_MEMORY: process.env.MINI_VLLM_EMU_MEMORY ?? '4G',
};
if (sanitize) {
  // Node is not instrumented: the sanitizer runtimes are preloaded. Leaks are Node's business, not ours.
  const lib = (name) => run('gcc', [`-print-file-name=${name}`], {}, 'pipe').stdout.trim();
  env.LD_PRELOAD = [lib('libasan.so'), lib('libubsan.so')].join(' ');
  env.ASAN_OPTIONS = 'detect_leaks=0:halt_on_error=1:abort_on_error=1';
  env.UBSAN_OPTIONS = 'print_stacktrace=1:halt_on_error=1';
}

const mocha = [join(root, 'node_modules', 'mocha', 'bin', 'mocha.js')];
// Named files replace the config's spec list (which would add every file): the config's other settings, spelled out.
const fileRun = ['--no-config', '--reporter', './test/reporter.cjs', '--timeout', '300000', '--slow', '2000'];
// The kernel suites: every op's tests and the argument fuzz, and (not under the sanitizers, where UBSan itself reports
// the misaligned load one of them plants) the emulator's own tests.
const kernelSuites = () => [
  ...readdirSync(join(root, 'dist', 'test', 'ops'))
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => join('dist', 'test', 'ops', f)),
  ...(sanitize ? [] : [join('dist', 'test', 'emu', 'device.test.js')]),
];

if (orders !== null) {
  // Two seeded thread orders: each run folds every device-to-host byte of the kernel suites' CUDA halves into a digest;
  // a kernel whose result depends on the order its threads ran in (a missing barrier) gives two digests. The
  // emulator's own tests run under each order too, in a process of their own: some of their probes answer, by design,
  // with what the order did (__activemask, the thread-order demonstrations), so their bytes stay out of the digest.
  const seeds = orders.split(',').map(Number);
  const dir = mkdtempSync(join(tmpdir(), 'mini-vllm-emu-'));
  const ops = kernelSuites().filter((f) => f.includes(join('test', 'ops')));
  const own = kernelSuites().filter((f) => !ops.includes(f));
  const digests = seeds.map((seed) => {
    const file = join(dir, `digest-${seed}.txt`);
    log(`kernel suites under thread order ${seed}`);
    const grep = args.includes('--grep') ? [] : ['--grep', 'on cuda|emulated'];
    const seeded = { ...env, MINI_VLLM_EMU_SEED: String(seed) };
    const r = run(process.execPath, ['--expose-gc', ...mocha, ...fileRun, ...grep, ...ops, ...args], {
      ...seeded,
      MINI_VLLM_EMU_DIGEST: file,
    });
    if (r.status !== 0) process.exit(r.status ?? 1);
    // "<digest> <pid>": written last by this mocha process, or a child that inherited the variable wrote over it and
    // the digest would say nothing about the suites (their children must not take MINI_VLLM_EMU_DIGEST)
    const [digest, pid] = readFileSync(file, 'utf8').trim().split(' ');
    if (Number(pid) !== r.pid) {
      console.error(`test:emu: the digest was last written by process ${pid}, not the suites' (${r.pid})`);
      process.exit(1);
    }
    if (own.length > 0) {
      log(`the emulator's own tests under thread order ${seed}`);
      const e = run(process.execPath, ['--expose-gc', ...mocha, ...fileRun, ...own], seeded);
      if (e.status !== 0) process.exit(e.status ?? 1);
    }
    return digest;
  });
  console.log(`thread orders ${seeds.join(', ')}: device-to-host digests ${digests.join(', ')}`);
  if (new Set(digests).size !== 1) {
    console.error('test:emu: the kernel suites gave different bits under different thread orders');
    process.exit(1);
  }
  process.exit(0);
}

const named = args.some((a) => a.endsWith('.js'));
const files = sanitize && !named ? kernelSuites() : [];
// Under the sanitizers: the kernels on the emulated device, and the argument fuzz (the CPU twins run in other builds).
if (sanitize && !args.includes('--grep')) args.push('--grep', 'on cuda|fuzz');
const argv = sanitize || named ? [...fileRun, ...files, ...args] : args;
process.exit(run(process.execPath, ['--expose-gc', ...mocha, ...argv], env).status ?? 1);
