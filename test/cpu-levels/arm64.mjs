#!/usr/bin/env node
// npm run test:arm64: the CPU kernels cross-built for aarch64 (the default baseline armv8-a, and the neon level:
// armv8.2-a+fp16+dotprod) with Debian's cross compiler, and test/cpu-levels/check.cc run under qemu-aarch64 (Debian's
// qemu-user): every neon kernel against the scalar kernel of the same build, on the same random inputs. Installs the
// two Debian packages where they are missing (as root, or through sudo). Ends with the check's "N passed, N failed".
//
//   node test/cpu-levels/arm64.mjs [--only <substring>] [--verbose]     (arguments go to the check program)
import { execFileSync, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../../bench/scripts/args.mjs';

const ARGS = scriptArgs(
  `usage: npm run test:arm64 [-- --only <substring>] [--verbose]
  Cross-builds the CPU kernels for aarch64 (build-arm64/) and runs test/cpu-levels/check.cc under qemu-aarch64: every
  neon kernel against the scalar one. Installs g++-aarch64-linux-gnu and qemu-user where missing. Arguments go to
  the check program.`,
  {},
  { passThrough: true },
).positionals;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = join(root, 'build-arm64');
const CXX = 'aarch64-linux-gnu-g++';
const QEMU = 'qemu-aarch64';
const SYSROOT = '/usr/aarch64-linux-gnu';

const log = (...a) => console.error('[test:arm64]', ...a);
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const run = (cmd, args, opts = {}) => {
  log([cmd, ...args].join(' '));
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: root, ...opts });
};

if (!has(CXX) || !has(QEMU)) {
  if (!has('apt-get')) {
    log(`needs ${CXX} and ${QEMU}: install Debian's g++-aarch64-linux-gnu and qemu-user (or your system's)`);
    process.exit(1);
  }
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const apt = (...args) =>
    run(sudo[0] ?? 'env', [...sudo.slice(1), 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args]);
  apt('update', '-qq');
  apt('install', '-y', '-qq', '--no-install-recommends', 'g++-aarch64-linux-gnu', 'qemu-user');
}

run('cmake', [
  '-S',
  root,
  '-B',
  build,
  '-DCMAKE_SYSTEM_NAME=Linux',
  '-DCMAKE_SYSTEM_PROCESSOR=aarch64',
  `-DCMAKE_CXX_COMPILER=${CXX}`,
  '-DCMAKE_BUILD_TYPE=Release',
  '-DMINI_VLLM_CPU_CHECK=ON',
  '-DMINI_VLLM_CPU_ARCH=default',
  `-DNODE_EXECUTABLE=${process.execPath}`,
]);
run('cmake', ['--build', build, '--target', 'mvllm_cpu_check', '-j', String(availableParallelism())]);

// qemu's default CPU for aarch64 ("max") has fp16 and dotprod, so the neon level runs; --require makes its absence a
// failure rather than a check of nothing.
const check = spawnSync(QEMU, ['-L', SYSROOT, join(build, 'mvllm_cpu_check'), '--require', 'neon', ...ARGS], {
  stdio: 'inherit',
  cwd: root,
});
if (check.error) throw check.error;
process.exit(check.status ?? 1);
