#!/usr/bin/env bash
# Prepares .device/ (git-ignored) for bench/gpu-check.sh on a GPU machine without Node.js (bench/gpu-check.md):
# a CUDA build with a portable CPU target, the compiled JS, Node itself, and only the packages the run needs.
usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" | sed '/^[^ ]*=\|^set \|^cd /d'; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
esac
[ $# -le 0 ] || { echo "too many arguments ($#)" >&2; usage >&2; exit 2; }
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${MINI_VLLM_SHARED:-../shared}

MINI_VLLM_CUDA=on MINI_VLLM_CPU_ARCH=portable MINI_VLLM_BUILD_DIR=build-device node csrc/build.mjs
npm run build >&2

rm -rf .device
"$shared/device/pack-node" .device >&2
cp build-device/Release/mini_vllm.node .device/
cp -r dist .device/dist
cp package.json .device/  # lib/version.ts reads it beside dist/
git rev-parse --short HEAD > .device/COMMIT
git diff --quiet HEAD -- lib csrc test bench || echo "+uncommitted" >> .device/COMMIT

# node_modules: the closure of what the tests and benchmarks import (no compilers, no linters).
node --input-type=module -e "
  import { cpSync, existsSync, readFileSync } from 'node:fs';
  // The runtime dependencies (less the build-only ones) and the test and benchmark tools. Not the openai client
  // (20 MB): the server's tests run on the CPU in CI, and gpu-check.sh leaves them out.
  const root = JSON.parse(readFileSync('package.json', 'utf8'));
  const buildOnly = new Set(['cmake-js', 'node-addon-api']);
  const todo = [...Object.keys(root.dependencies).filter((d) => !buildOnly.has(d)), 'mocha', 'chai', 'benny'];
  const seen = new Set();
  while (todo.length) {
    const name = todo.pop();
    if (seen.has(name) || !existsSync('node_modules/' + name)) continue;
    seen.add(name);
    const pkg = JSON.parse(readFileSync('node_modules/' + name + '/package.json', 'utf8'));
    todo.push(...Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }));
  }
  // What runs, not what documents or tests it (the carry is 64 MiB in all): no type declarations, source maps,
  // markdown, or test / docs / examples / benchmark folders. tokenizers ships a binary for every platform (64 MB):
  // take the linux-x64-gnu one only.
  const skipDir = /\/(test|tests|__tests__|docs|examples|benchmarks?|\.github)$/;
  const skipFile = /\.(d\.ts|d\.mts|d\.cts|map|md|markdown)$/i;
  const keep = (name) => (src) => {
    const rel = src.slice(('node_modules/' + name).length);
    if (rel === '') return true;
    if (skipDir.test(rel) || skipFile.test(rel)) return false;
    return name !== 'tokenizers' || !src.endsWith('.node') || src.endsWith('linux-x64-gnu.node');
  };
  for (const name of seen) cpSync('node_modules/' + name, '.device/node_modules/' + name, { recursive: true, dereference: true, filter: keep(name) });
  for (const bin of ['mocha']) cpSync('node_modules/.bin/' + bin, '.device/node_modules/.bin/' + bin, { dereference: true });
  console.error('packed ' + seen.size + ' packages');
"
# The shared test models (stories260K: a few MB), so the model goldens run on CUDA too.
if [ -d "$shared/models/stories260K" ]; then
  mkdir -p .device/models && cp -r "$shared/models/stories260K" .device/models/
  [ -d "$shared/models/llama2-tokenizer" ] && cp -r "$shared/models/llama2-tokenizer" .device/models/
fi
du -sh .device >&2
echo "ready: run bench/gpu-check.sh on the GPU machine with carry ['.device']"
