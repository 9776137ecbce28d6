#!/bin/bash
# One round per ROUNDS: llama-bench vs mini-vllm generate --json (decodeTokensPerSecond), batch-1 greedy decode of 128
# tokens, 2 threads, on each of FILES (stories110M-shaped GGUFs under /tmp/s110: f32.gguf written by
# `mini-vllm quantize -m dummy:stories110M --type f32`, the others by llama-quantize from it). Ours under the avx512 and
# avx2 levels with this tree's addon, and under avx512 with BASE_ADDON (an addon built from the round's starting commit).
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
    b5=${BASE_ADDON:+$(ours avx512 $f MINI_VLLM_ADDON=$BASE_ADDON)}
    echo "round $round $f llama.cpp $l | $(git rev-parse --short HEAD)+tree avx512 $a5 avx2 $a2 | base avx512 ${b5:--}"
  done
done
