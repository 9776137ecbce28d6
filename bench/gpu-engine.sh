#!/usr/bin/env bash
# Issue #9's one GPU run (bench/gpu-engine.md): the CUDA graph tests, then `mini-vllm bench` latency and memory
# (which reports its throughput too) on dummy:llama-2-7b and dummy:tinyllama-1.1b in bfloat16, each with CUDA graphs
# on and off (--enforce-eager), latency runs profiled; then the suite's CUDA tests in the time left; a table last.
#
#   bash bench/gpu-engine.sh OUT_DIR      (needs .device/ from bench/gpu-pack.sh; about 8 minutes)
usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" | sed '/^[^ ]*=\|^set \|^cd /d'; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "too many arguments ($#)" >&2; usage >&2; exit 2; }
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-engine-out}}
mkdir -p "$out"
exec > >(tee "$out/gpu-engine.log") 2>&1

source bench/gpu-setup.sh
# --no-config: the config's spec list would add every test file to the one named
mocha=(env MINI_VLLM_REQUIRE_CUDA=1 node --expose-gc node_modules/mocha/bin/mocha.js --no-config --reporter ./test/reporter.cjs --timeout 300000)
# A dry run without a GPU, on the emulated device (npm run build:emu), checks the script's own logic (CI runs it):
#   GPU_DRY_RUN=emu GPU_ENGINE_MODELS=stories15M GPU_ENGINE_PROMPTS=2 GPU_ENGINE_LENS="16 4" \
#     GPU_ENGINE_ARGS="--max-num-seqs 2 ..." GPU_ENGINE_GRAPH_TESTS=dist/test/cuda-graph.test.js bash bench/gpu-engine.sh OUT
device=${GPU_ENGINE_DEVICE:-cuda}
models=${GPU_ENGINE_MODELS:-llama-2-7b tinyllama-1.1b}
prompts=${GPU_ENGINE_PROMPTS:-256}
read -r input_len output_len <<< "${GPU_ENGINE_LENS:-512 128}"
read -r -a engine_args <<< "${GPU_ENGINE_ARGS:-}"
read -r -a graph_tests <<< "${GPU_ENGINE_GRAPH_TESTS:-dist/test/decode-graphs.test.js dist/test/cuda-graph.test.js}"
shopt -s nullglob

section "graph replay against eager execution (CUDA required)"
timeout 60 "${mocha[@]}" "${graph_tests[@]}" 2>&1 | tee "$out/tests-graphs.log"
graphs_summary=$(tail -n 1 "$out/tests-graphs.log")

bench() {  # bench NAME SECONDS ARGS...
  local name=$1 limit=$2
  shift 2
  section "bench $name"
  timeout "$limit" node dist/lib/cli.js bench "$@" --device "$device" --dtype bfloat16 --input-len "$input_len" --output-len "$output_len" --warmup 1 "${engine_args[@]}" \
    --json "$out/$name.json" 2>&1 | tee "$out/$name.log" || echo "bench $name failed or timed out"
}
# Caps (s) per run, latency and memory: 7B 35 + 60, 1.1B 20 + 30; with the tests, 400 s in all, so that a second
# (shorter: GPU_ENGINE_MODELS=... for what failed) run still fits the 15 minutes of device time.
for model in $models; do
  lat=20 mem=30
  [ "$model" = llama-2-7b ] && lat=35 mem=60
  for path in graphs eager; do
    flag=()
    [ "$path" = eager ] && flag=(--enforce-eager)
    bench "$model-latency-$path" "$lat" latency -m "dummy:$model" --batch-size 1 --num-iters 3 --profile "$out/$model-$path.trace.json" --profile-steps 6 "${flag[@]}"
    bench "$model-memory-$path" "$mem" memory -m "dummy:$model" --num-prompts "$prompts" "${flag[@]}"
  done
done

# Last: the engine-level CUDA tests (the kernel suites are bench/gpu-check.sh's, issue 8; the CPU ones run in CI).
section "the engine's CUDA tests (engine, generate, model goldens), 50 s at most"
timeout 50 "${mocha[@]}" --grep 'on cuda' dist/test/engine.test.js dist/test/generate.test.js dist/test/model-golden.test.js 2>&1 | tee "$out/tests.log"
tests_summary=$(tail -n 1 "$out/tests.log")

section "summary"
echo "graph tests: $graphs_summary"
echo "tests: $tests_summary"
node dist/lib/bench/engine-table.js --md "$out/summary.md" "$out"/*-latency-*.json "$out"/*-memory-*.json
