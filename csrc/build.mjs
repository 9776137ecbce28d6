#!/usr/bin/env node
// Builds the native addon. Build noise goes to stderr; the last line on stdout is one summary.
//
//   node csrc/build.mjs          cmake-js build into build/ (CUDA when nvcc is found)
//   node csrc/build.mjs --gyp    CPU-only node-gyp build of binding.gyp into build-gyp/build/Release
//   node csrc/build.mjs --emu    the CUDA sources built for the emulated device (no GPU, no nvcc) into build-emu/
//                                (--sanitize: AddressSanitizer and UndefinedBehaviorSanitizer, into build-emu-san/)
//
// Environment: MINI_VLLM_CUDA=auto|on|off|emu, MINI_VLLM_CUDA_ARCHS="90-real;90-virtual",
// MINI_VLLM_CPU_ARCH=default|native|portable|<march> (the baseline; CMakeLists.txt says which levels are built above
// it), MINI_VLLM_WERROR=on (our C++ warnings are errors), MINI_VLLM_BUILD_DIR (cmake-js output dir, default build).
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const env = (name, fallback) => (process.env[name] ?? '').trim() || fallback;

function run(cmd, args, cwd) {
  // stdout of the tools is noise for our caller: send it to stderr with everything else.
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', process.stderr, process.stderr] });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function cmakeBuild({ emu = false, sanitize = false } = {}) {
  const out = env('MINI_VLLM_BUILD_DIR', emu ? (sanitize ? 'build-emu-san' : 'build-emu') : 'build');
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  // Configure every time (cheap, objects are kept): `cmake-js compile` skips configuring an existing build
  // directory, so a changed MINI_VLLM_* variable would be silently ignored.
  const configure = [
    cmakeJs,
    'configure',
    '--out',
    out,
    `--CDMINI_VLLM_CUDA=${emu ? 'EMU' : env('MINI_VLLM_CUDA', 'AUTO')}`,
    `--CDMINI_VLLM_EMU_SANITIZE=${sanitize ? 'ON' : 'OFF'}`,
    `--CDMINI_VLLM_CUDA_ARCHS=${env('MINI_VLLM_CUDA_ARCHS', '80-real;86-real;89-real;90-real;90-virtual')}`,
    `--CDMINI_VLLM_CPU_ARCH=${env('MINI_VLLM_CPU_ARCH', 'default')}`,
    `--CDMINI_VLLM_WERROR=${env('MINI_VLLM_WERROR', 'OFF')}`,
    `--CDNODE_EXECUTABLE=${process.execPath}`,
  ];
  let status = run(process.execPath, configure, root);
  if (status === 0)
    status = run(
      process.execPath,
      [cmakeJs, 'build', '--out', out, '--parallel', String(availableParallelism())],
      root,
    );
  const summaryFile = resolve(root, out, 'mini_vllm_build.txt');
  if (status !== 0 || !existsSync(summaryFile)) {
    console.error(`mini-vllm: native build failed (cmake-js exit ${status}); the messages above say why`);
    process.exit(status || 1);
  }
  console.log(`${readFileSync(summaryFile, 'utf8').trim()} -> ${join(out, 'Release', 'mini_vllm.node')}`);
}

function gypBuild() {
  // A separate tree so node-gyp's build/ does not replace the cmake-js one.
  const stage = join(root, 'build-gyp');
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  cpSync(join(root, 'binding.gyp'), join(stage, 'binding.gyp'));
  cpSync(join(root, 'csrc'), join(stage, 'csrc'), { recursive: true });
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
  // Offline: use the headers of the running Node (e.g. /usr/include/node) rather than downloading them.
  const prefix = resolve(dirname(process.execPath), '..');
  const args = [nodeGyp, 'rebuild', `-j`, String(availableParallelism())];
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  // One level of CPU kernels (csrc/cpu/level.h), compiled for the baseline: the x86-64 levels above it are CMake's.
  const cpuArch = env('MINI_VLLM_CPU_ARCH', 'default');
  const baseline = { portable: 'x86-64-v3', default: process.arch === 'x64' ? 'x86-64' : 'armv8-a' };
  args.push('--', `-Dcpu_arch=${baseline[cpuArch] ?? cpuArch}`);
  const status = run(process.execPath, args, stage);
  if (status !== 0) {
    console.error(`mini-vllm: node-gyp build failed (exit ${status}); the messages above say why`);
    process.exit(status || 1);
  }
  console.log('mini-vllm native build (node-gyp): backends cpu only -> build-gyp/build/Release/mini_vllm.node');
}

const USAGE = `usage: node csrc/build.mjs [--gyp | --emu [--sanitize]]
  (no option)  cmake-js build into build/ (CUDA when nvcc is found)
  --gyp        CPU-only node-gyp build of binding.gyp into build-gyp/build/Release
  --emu        the CUDA sources built for the emulated device (no GPU, no nvcc) into build-emu/
  --sanitize   with --emu: AddressSanitizer and UndefinedBehaviorSanitizer, into build-emu-san/
Environment: MINI_VLLM_CUDA, MINI_VLLM_CUDA_ARCHS, MINI_VLLM_CPU_ARCH, MINI_VLLM_WERROR, MINI_VLLM_BUILD_DIR (this
file's header says what each does).`;
let flags;
try {
  flags = parseArgs({
    options: {
      gyp: { type: 'boolean', default: false },
      emu: { type: 'boolean', default: false },
      sanitize: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (e) {
  console.error(`${e.message}\n\n${USAGE}`);
  process.exit(2);
}
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}
if (flags.gyp) gypBuild();
else cmakeBuild({ emu: flags.emu, sanitize: flags.sanitize });
