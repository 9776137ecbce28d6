#!/bin/bash
# one serve comparison round: llama-server and mini-vllm serve, each fresh, the same bench client
set -u
F=${F:-/tmp/s110/f32.gguf}; O=${O:-/tmp/r5/serve}; mkdir -p $O; R=${R:-1}
LB=/work/llama.cpp/build/bin
BENCH="node dist/lib/cli.js bench serve -m $F --max-concurrency 16 --num-prompts 64 --input-len 128 --output-len 64"
wait_up() { for i in $(seq 1 120); do curl -sf $1 >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
$LB/llama-server -m $F -np 16 -c 16384 -t 2 --port 8090 > $O/llama-server-$R.stderr 2>&1 &
P=$!; wait_up http://127.0.0.1:8090/health
$BENCH --base-url http://127.0.0.1:8090 --json $O/llama-$R.json > $O/llama-server-run$R.txt 2>&1
kill $P; wait $P 2>/dev/null
node dist/lib/cli.js serve -m $F --device cpu --port 8091 > $O/mvs-$R.stdout 2> $O/mvs-$R.stderr &
P=$!; wait_up http://127.0.0.1:8091/health
$BENCH --base-url http://127.0.0.1:8091 --json $O/mvs-$R.json > $O/mini-vllm-serve-run$R.txt 2>&1
kill $P; wait $P 2>/dev/null
for f in $O/llama-server-run$R.txt $O/mini-vllm-serve-run$R.txt; do echo "== $f"; grep -E "commit|Output token throughput|Median TPOT|Median TTFT" $f; done
