#!/usr/bin/env bash
# One GPU run, everything in one go (bench/gpu-check.md): prints nvidia-smi and the commit, runs the whole test
# suite with CUDA required, compute-sanitizer on a short kernel test, the op benchmarks on CUDA, the same ops in
# PyTorch on the same shapes, and prints a short table last. Writes the log and JSON into the folder it is given.
#
#   bash bench/gpu-check.sh OUT_DIR      (needs .device/ from bench/gpu-pack.sh; at most 520 s in all)
#
# A dry run without a GPU, on the emulated device (npm run build:emu), on tiny shapes and a tiny model (CI runs it):
#   GPU_DRY_RUN=emu GPU_CHECK_TESTS="dist/test/ops/add.test.js" GPU_CHECK_BENCH="^add .*\[7, " \
#     GPU_CHECK_MODELS=stories15M GPU_CHECK_OUTPUT_LEN=4 GPU_CHECK_ENGINE_ARGS="--max-num-seqs 2 ..." \
#     MINI_VLLM_EMU_MEMORY=4G bash bench/gpu-check.sh OUT
usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" | sed '/^[^ ]*=\|^set \|^cd /d'; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "too many arguments ($#)" >&2; usage >&2; exit 2; }
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check-out}}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
export PYTHONUNBUFFERED=1

source bench/gpu-setup.sh
# The knobs of a dry run (defaults: the real run). Caps (s): tests 180, sanitizer 2 x 30, ops 150, decode 2 x 35,
# torch 60: 520 in all, so the run fits one device call of 540 s.
read -r -a tests <<< "${GPU_CHECK_TESTS:---ignore dist/test/server.test.js}"
bench_filter=${GPU_CHECK_BENCH:-}
models=${GPU_CHECK_MODELS:-tinyllama-1.1b llama-2-7b}
output_len=${GPU_CHECK_OUTPUT_LEN:-64}
read -r -a engine_args <<< "${GPU_CHECK_ENGINE_ARGS:-}"

section "test suite, CUDA required"
# The server's tests (CPU only, through the openai client, which is not packed) run in CI, not here.
# (a file list replaces the config's spec list: --no-config, and the config's reporter and timeout spelled out)
mocha=(node --expose-gc node_modules/mocha/bin/mocha.js)
[[ "${tests[0]}" == dist/* ]] && mocha+=(--no-config --reporter ./test/reporter.cjs --timeout 300000)
MINI_VLLM_REQUIRE_CUDA=1 timeout 180 "${mocha[@]}" "${tests[@]}" 2>&1 | tee "$out/tests.log"
tests_summary=$(tail -n 1 "$out/tests.log")

section "compute-sanitizer (memcheck, racecheck) on a short CUDA test"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
san_summary="compute-sanitizer not found"
if [ -n "$sanitizer" ]; then
  san_summary=""
  for tool in memcheck racecheck; do
    MINI_VLLM_REQUIRE_CUDA=1 timeout 30 "$sanitizer" --tool "$tool" --error-exitcode 9 --target-processes all \
      node node_modules/mocha/bin/mocha.js --grep 'on cuda.*(\[7, 768\]|\[7, 769\]|tokens 7 heads 7/7 head 64 rot 64|decode float32 heads 8/8 x 64, block 16|mixed float16 heads 32/8|float32 7 x 769|bfloat16 37 x 513|embedding float16 vocab 3|strided key/value)' \
      dist/test/ops/layernorm.test.js dist/test/ops/activation.test.js dist/test/ops/pos-encoding.test.js \
      dist/test/ops/cache.test.js dist/test/ops/attention.test.js dist/test/ops/linear.test.js dist/test/ops/embedding.test.js > "$out/sanitizer-$tool.log" 2>&1
    rc=$?
    tail -n 3 "$out/sanitizer-$tool.log"
    san_summary+="$tool exit $rc; "
  done
fi

section "op benchmarks (ours, CUDA)"
filter=()
[ -n "$bench_filter" ] && filter=(--quick --filter "$bench_filter")
timeout 150 node dist/lib/bench/ops.bench.js --device cuda "${filter[@]}" --json "$out/ops-cuda.json"

section "whole-model decode on CUDA (dummy weights generated on the device)"
for model in $models; do
  timeout 35 node dist/lib/cli.js bench latency --device cuda --dtype bfloat16 -m "dummy:$model" --input-len 16 --output-len "$output_len" \
    --num-iters 3 "${engine_args[@]}" --json "$out/decode-cuda-$model.json" 2>&1 | tee "$out/decode-cuda-$model.log" || echo "decode run of $model failed"
done

section "the same ops in PyTorch"
timeout 60 python3 bench/gpu-check/torch_ops.py --json "$out/torch-ops.json" || echo "torch run failed"

section "summary"
echo "tests: $tests_summary"
echo "sanitizer: $san_summary"
python3 bench/gpu-check/table.py "$out/ops-cuda.json" "$out/torch-ops.json" "$out/summary.json"
