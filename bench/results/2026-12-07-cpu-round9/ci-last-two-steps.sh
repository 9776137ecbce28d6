#!/usr/bin/env bash
# Round 9: .ci/run's helpers (lines 1-16, 55-58, 110-125) and its steps from the node-gyp build on, run on the clean
# clone after its whole run failed in the node-gyp step (README.md). Made by sed from .ci/run at cda9209.
# CI on a clean clone: the README's two commands, plus the build variants and static checks.
# Runs on a machine like the developers': 2 cores, no GPU, nvcc 13 present.
set -euo pipefail
cd /work/ci-clone
# Each step says how long the one before it took, so the slow ones are plain in the log (the target: under 60 min).
ci_start=$(date +%s)
step_start=$ci_start
step() {
  local now
  now=$(date +%s)
  [ "$now" -gt "$ci_start" ] && printf '(%d s; %d s in all)\n' $((now - step_start)) $((now - ci_start))
  step_start=$now
  printf '\n==== %s\n' "$*"
}

expect_run() { # log report cpu|emu
  tail -n 1 "$1" | grep -Eq '^[0-9]+ passed, 0 failed, [0-9]+ skipped$'
  node test/required-suites.mjs "$3" "$2"
}
isa_tests() { # addon name
  local files
  files=$(ls dist/test/ops/*.test.js dist/test/*.test.js |
    grep -Ev '/(bench|data-parallel|deploy|replicas|repository|scheduler|server|tokenizer|loader-fuzz)\.test\.js$')
  # shellcheck disable=SC2086 # one argument per file
  MINI_VLLM_TEST_REPORT="/tmp/mini-vllm-$2.json" MINI_VLLM_ADDON="$1" node --expose-gc node_modules/mocha/bin/mocha.js \
    --no-config --reporter ./test/reporter.cjs --timeout 300000 --slow 2000 $files 2>&1 | tee "/tmp/mini-vllm-$2.log"
  MINI_VLLM_ADDON="$1" expect_run "/tmp/mini-vllm-$2.log" "/tmp/mini-vllm-$2.json" isa
}
expect_simd() { # addon simd
  MINI_VLLM_ADDON="$1" node --input-type=module -e "
    import { backends } from './dist/lib/index.js';
    const b = backends();
    console.log(JSON.stringify(b.cpu), 'cuda compiled:', b.cuda.compiled);
    if (b.cpu.simd !== '$2' || b.cuda.compiled) { console.error('expected a CPU-only $2 build'); process.exit(1); }"
}

step "node-gyp build of binding.gyp (CPU only, baseline x86-64: the scalar path), and the kernel-reaching tests on it"
MINI_VLLM_CPU_ARCH=x86-64 npm run build:gyp
expect_simd "$PWD/build-gyp/build/Release/mini_vllm.node" scalar
isa_tests "$PWD/build-gyp/build/Release/mini_vllm.node" gyp

step "aarch64: the CPU kernels cross-built (scalar and neon levels), every neon kernel against scalar under qemu-aarch64"
npm run test:arm64 2>&1 | tee /tmp/mini-vllm-arm64.log
tail -n 1 /tmp/mini-vllm-arm64.log | grep -Eq '^[1-9][0-9]* passed, 0 failed$'

step "CI passed"
