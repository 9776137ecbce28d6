#!/bin/bash
# Batch-1 greedy decode, 128 tokens: 0f07764 (a worktree at /tmp/base, built MINI_VLLM_CUDA=off) and this commit
# (/work/main, built the same way) alternating, on the stories110M-shaped GGUF files of issue 32 (/tmp/s110).
ours() { (cd $1 && node dist/lib/cli.js generate --json -m /tmp/s110/$2.gguf --device cpu -t 0 --ignore-eos -n 128 --prompt "" 2>/dev/null |
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.decodeTokensPerSecond.toFixed(1))})"); }
for f in q4_0 q8_0 f32; do
  for round in 1 2 3 4 5 6 7 8; do
    if [ $((round % 2)) = 1 ]; then o=$(ours /tmp/base $f); n=$(ours /work/main $f); else n=$(ours /work/main $f); o=$(ours /tmp/base $f); fi
    echo "round $round $f 0f07764 $o | binding-layout $n"
  done
done
