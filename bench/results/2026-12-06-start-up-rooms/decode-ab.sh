#!/bin/bash
# batch-1 greedy decode, 128 tokens, decodeTokensPerSecond of `mini-vllm generate --json`: 961d092 vs HEAD alternating,
# beside llama-bench on the same file (2 threads)
export LD_LIBRARY_PATH=/work/llama.cpp/build/bin
ours() { # dir file
  (cd $1 && node dist/lib/cli.js generate --json -m /tmp/s110/$2.gguf --device cpu -t 0 --ignore-eos -n 128 --prompt "" 2>/dev/null |
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.decodeTokensPerSecond.toFixed(1))})")
}
for round in 1 2 3; do
  for f in q4_0 q8_0; do
    l=$(/work/llama.cpp/build/bin/llama-bench -m /tmp/s110/$f.gguf -p 0 -n 128 -t 2 -r 3 -o csv 2>/dev/null | tail -1 | awk -F'","' '{print $(NF-1)}')
    o=$(ours /tmp/old-wt $f)
    n=$(ours /work/main $f)
    echo "round $round $f llama.cpp $l | 961d092 $o | HEAD $n"
  done
done
