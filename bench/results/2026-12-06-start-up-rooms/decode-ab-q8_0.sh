#!/bin/bash
ours() { (cd $1 && node dist/lib/cli.js generate --json -m /tmp/s110/$2.gguf --device cpu -t 0 --ignore-eos -n 128 --prompt "" 2>/dev/null |
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.decodeTokensPerSecond.toFixed(1))})"); }
for round in 1 2 3 4 5 6 7 8; do
  if [ $((round % 2)) = 1 ]; then o=$(ours /tmp/old-wt q8_0); n=$(ours /work/main q8_0); else n=$(ours /work/main q8_0); o=$(ours /tmp/old-wt q8_0); fi
  echo "round $round q8_0 961d092 $o | HEAD $n"
done
