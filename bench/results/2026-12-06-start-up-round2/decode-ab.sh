#!/bin/bash
# Batch-1 greedy decode, 128 tokens, f26829a (a worktree at /tmp/t1, the same native build) and HEAD alternating.
# usage: decode-ab.sh [files] [rounds]   e.g. decode-ab.sh "q4_0 f32" 6 (decode-ab.log), decode-ab.sh q4_0 10
# (decode-ab-q4_0.log), decode-ab.sh f32 10 (decode-ab-f32.log)
files=${1:-q4_0 f32}
rounds=${2:-6}
ours() { (cd $1 && node dist/lib/cli.js generate --json -m /tmp/s110/$2.gguf --device cpu -t 0 --ignore-eos -n 128 --prompt "" 2>/dev/null |
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.decodeTokensPerSecond.toFixed(1))})"); }
for f in $files; do
  for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) = 1 ]; then o=$(ours /tmp/t1 $f); n=$(ours /work/main $f); else n=$(ours /work/main $f); o=$(ours /tmp/t1 $f); fi
    echo "round $round $f f26829a $o | HEAD $n"
  done
done
