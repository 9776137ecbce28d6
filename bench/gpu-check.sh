#!/usr/bin/env bash
# One GPU run, everything in one go (bench/gpu-check.md): prints nvidia-smi and the commit, runs the whole test
# suite with CUDA required, compute-sanitizer on a short kernel test, the op benchmarks on CUDA, the same ops in
# PyTorch on the same shapes, and prints a short table last. Writes the log and JSON into the folder it is given.
#
#   bash bench/gpu-check.sh OUT_DIR      (needs .device/ from bench/gpu-pack.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check-out}}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
export PYTHONUNBUFFERED=1

source bench/gpu-setup.sh

section "test suite, CUDA required"
# The server's tests (CPU only, through the openai client, which is not packed) run in CI, not here.
MINI_VLLM_REQUIRE_CUDA=1 timeout 300 node node_modules/mocha/bin/mocha.js --ignore dist/test/server.test.js 2>&1 | tee "$out/tests.log"
tests_summary=$(tail -n 1 "$out/tests.log")

section "compute-sanitizer (memcheck, racecheck) on a short CUDA test"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
san_summary="compute-sanitizer not found"
if [ -n "$sanitizer" ]; then
  san_summary=""
  for tool in memcheck racecheck; do
    MINI_VLLM_REQUIRE_CUDA=1 timeout 240 "$sanitizer" --tool "$tool" --error-exitcode 9 --target-processes all \
      node node_modules/mocha/bin/mocha.js --grep 'on cuda.*(\[7, 768\]|\[7, 769\]|tokens 7 heads 7/7 head 64 rot 64|decode float32 heads 8/8 x 64, block 16|mixed float16 heads 32/8|float32 7 x 769|bfloat16 37 x 513|embedding float16 vocab 3|strided key/value)' \
      dist/test/ops/layernorm.test.js dist/test/ops/activation.test.js dist/test/ops/pos-encoding.test.js \
      dist/test/ops/cache.test.js dist/test/ops/attention.test.js dist/test/ops/linear.test.js dist/test/ops/embedding.test.js > "$out/sanitizer-$tool.log" 2>&1
    rc=$?
    tail -n 3 "$out/sanitizer-$tool.log"
    san_summary+="$tool exit $rc; "
  done
fi

section "op benchmarks (ours, CUDA)"
timeout 600 node dist/bench/ops.bench.js --device cuda --json "$out/ops-cuda.json"

section "whole-model decode on CUDA (dummy weights generated on the device)"
for model in tinyllama-1.1b llama-2-7b; do
  timeout 120 node dist/lib/cli.js bench latency --device cuda --dtype bfloat16 -m "dummy:$model" --input-len 16 --output-len 64 \
    --num-iters 3 --json "$out/decode-cuda-$model.json" 2>&1 | tee "$out/decode-cuda-$model.log" || echo "decode run of $model failed"
done

section "the same ops in PyTorch"
timeout 300 python3 bench/gpu-check/torch_ops.py --json "$out/torch-ops.json" || echo "torch run failed"

section "summary"
echo "tests: $tests_summary"
echo "sanitizer: $san_summary"
python3 bench/gpu-check/table.py "$out/ops-cuda.json" "$out/torch-ops.json" "$out/summary.json"
