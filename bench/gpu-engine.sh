#!/usr/bin/env bash
# Issue #9's one GPU run (bench/gpu-engine.md): the CUDA graph tests, the CUDA test suite, then `mini-vllm bench`
# latency and memory (which reports its throughput too) on dummy:llama-2-7b and dummy:tinyllama-1.1b in bfloat16,
# each with CUDA graphs on and off (--enforce-eager), latency runs profiled; a short table last.
#
#   bash bench/gpu-engine.sh OUT_DIR      (needs .device/ from bench/gpu-pack.sh; about 8 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-engine-out}}
mkdir -p "$out"
exec > >(tee "$out/gpu-engine.log") 2>&1
section() { printf '\n======== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

section "machine and commit"
nvidia-smi || true
echo "commit: $(cat .device/COMMIT 2>/dev/null || echo unknown)"
source .device/setup.sh
[ -d .device/models ] && export MINI_VLLM_MODELS="$PWD/.device/models/"
export MINI_VLLM_ADDON="$PWD/.device/mini_vllm.node" MINI_VLLM_COMMIT="$(head -n 1 .device/COMMIT 2>/dev/null || echo unknown)"
[ -e node_modules ] || ln -s .device/node_modules node_modules
[ -e dist ] || ln -s .device/dist dist
node --input-type=module -e "import { backends } from './dist/lib/index.js'; console.log(JSON.stringify(backends(), null, 2));" | tee "$out/backends.json"
mocha() { MINI_VLLM_REQUIRE_CUDA=1 node node_modules/mocha/bin/mocha.js "$@"; }

section "graph replay against eager execution (CUDA required)"
timeout 90 mocha dist/test/cuda-graphs.test.js 2>&1 | tee "$out/tests-graphs.log"
graphs_summary=$(tail -n 1 "$out/tests-graphs.log")

section "test suite, CUDA required (the server's tests need the openai client, not packed: CI runs them)"
timeout 150 mocha --ignore dist/test/server.test.js --ignore dist/test/cuda-graphs.test.js 2>&1 | tee "$out/tests.log"
tests_summary=$(tail -n 1 "$out/tests.log")

bench() {  # bench NAME SECONDS ARGS...
  local name=$1 limit=$2
  shift 2
  section "bench $name"
  timeout "$limit" node dist/lib/cli.js bench "$@" --device cuda --dtype bfloat16 --input-len 512 --output-len 128 --warmup 1 \
    --json "$out/$name.json" 2>&1 | tee "$out/$name.log" || echo "bench $name failed or timed out"
}
for model in llama-2-7b tinyllama-1.1b; do
  for path in graphs eager; do
    flag=()
    [ "$path" = eager ] && flag=(--enforce-eager)
    bench "$model-latency-$path" 60 latency -m "dummy:$model" --batch-size 1 --num-iters 3 --profile "$out/$model-$path.trace.json" --profile-steps 6 "${flag[@]}"
    bench "$model-memory-$path" 100 memory -m "dummy:$model" --num-prompts 256 "${flag[@]}"
  done
done

section "summary"
echo "graph tests: $graphs_summary"
echo "tests: $tests_summary"
node dist/bench/engine-table.js --md "$out/summary.md" "$out"/*-latency-*.json "$out"/*-memory-*.json
