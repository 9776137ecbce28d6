#!/bin/bash
# Round 8's decode comparison: llama-bench vs mini-vllm generate --json (decodeTokensPerSecond), batch-1 greedy decode
# of 128 tokens, 2 threads, on each of FILES (stories110M-shaped GGUFs under /tmp/s110, made as round 6's
# decode-side-by-side.sh says). Ours with CPU graphs (the default) under the avx512 and avx2 levels, and under avx512
# with --enforce-eager (every op called from JS, as before this round): the same build, so the last two columns are
# the graphs' A/B.
cd /work/main
export LD_LIBRARY_PATH=/work/llama.cpp/build/bin
ours() { # isa file [flags]
  MINI_VLLM_CPU_ISA=$1 node dist/lib/cli.js generate --json -m /tmp/s110/$2.gguf --device cpu -t 0 --ignore-eos \
    -n 128 --prompt "" $3 2>/dev/null |
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.decodeTokensPerSecond.toFixed(1))})"
}
echo "# $(date -u) HEAD $(git rev-parse --short HEAD); llama.cpp $(git -C /work/llama.cpp rev-parse --short HEAD)"
for round in $(seq 1 ${ROUNDS:-1}); do
  for f in ${FILES:-q8_0 q4_0 q4_k_m}; do
    l=$(/work/llama.cpp/build/bin/llama-bench -m /tmp/s110/$f.gguf -p 0 -n 128 -t 2 -r 3 -o csv 2>/dev/null | tail -1 |
      awk -F'","' '{print $(NF-1)}')
    a5=$(ours avx512 $f)
    a2=$(ours avx2 $f)
    e5=$(ours avx512 $f --enforce-eager)
    echo "round $round $f llama.cpp $l | graphs avx512 $a5 avx2 $a2 | eager avx512 $e5"
  done
done
