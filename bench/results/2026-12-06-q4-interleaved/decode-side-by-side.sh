#!/bin/bash
# One round per ROUNDS: llama-bench vs mini-vllm generate --json (decodeTokensPerSecond), batch-1 greedy decode of 128
# tokens, 2 threads, on each of FILES (stories110M-shaped GGUFs under /tmp/s110, written by llama-quantize). Ours under
# the avx512 and avx2 levels, and under avx512 with MINI_VLLM_CPU_PACK=0 (the plain row-by-row layout: "before").
cd /work/main
export LD_LIBRARY_PATH=/work/llama.cpp/build/bin
ours() { # isa file [env]
  env $3 MINI_VLLM_CPU_ISA=$1 node dist/lib/cli.js generate --json -m /tmp/s110/$2.gguf --device cpu -t 0 --ignore-eos \
    -n 128 --prompt "" 2>/dev/null |
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.decodeTokensPerSecond.toFixed(1))})"
}
for round in $(seq 1 ${ROUNDS:-1}); do
  for f in ${FILES:-q8_0 q4_0 q4_k_m}; do
    l=$(/work/llama.cpp/build/bin/llama-bench -m /tmp/s110/$f.gguf -p 0 -n 128 -t 2 -r 3 -o csv 2>/dev/null | tail -1 |
      awk -F'","' '{print $(NF-1)}')
    a5=$(ours avx512 $f)
    a2=$(ours avx2 $f)
    p0=$(ours avx512 $f MINI_VLLM_CPU_PACK=0)
    echo "round $round $f llama.cpp $l | $(git rev-parse --short HEAD) avx512 $a5 avx2 $a2 | plain layout (avx512) $p0"
  done
done
