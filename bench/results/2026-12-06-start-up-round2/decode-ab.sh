#!/bin/bash
# Batch-1 greedy decode, 128 tokens, f26829a (a worktree at /tmp/t1, the same native build) and HEAD alternating.
ours() { (cd $1 && node dist/lib/cli.js generate --json -m /tmp/s110/$2.gguf --device cpu -t 0 --ignore-eos -n 128 --prompt "" 2>/dev/null |
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.decodeTokensPerSecond.toFixed(1))})"); }
for f in q4_0 f32; do
  for round in 1 2 3 4 5 6; do
    if [ $((round % 2)) = 1 ]; then o=$(ours /tmp/t1 $f); n=$(ours /work/main $f); else n=$(ours /work/main $f); o=$(ours /tmp/t1 $f); fi
    echo "round $round $f f26829a $o | HEAD $n"
  done
done
