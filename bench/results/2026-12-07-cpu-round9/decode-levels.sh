#!/bin/bash
# Round 9's levels on batch-1 decode, without llama.cpp between the runs: `mini-vllm generate --json -n 128 -t 0
# --ignore-eos --prompt ""` (decode tok/s, CPU graphs) on each of FILES (/tmp/s110, as decode-side-by-side.sh of
# round 8 reads them) under avx512 and avx2 in turn, the order reversed each round, ROUNDS rounds.
cd /work/main
ours() { # isa file
  MINI_VLLM_CPU_ISA=$1 node dist/lib/cli.js generate --json -m /tmp/s110/$2.gguf --device cpu -t 0 --ignore-eos \
    -n 128 --prompt "" 2>/dev/null |
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.decodeTokensPerSecond.toFixed(1))})"
}
files=${FILES:-f32 q8_0 q4_0 q4_k_m}
echo "# decode tok/s by level on $files; levels alternate; $(date -u); HEAD $(git rev-parse --short HEAD)"
for round in $(seq 1 ${ROUNDS:-5}); do
  order="avx512 avx2"
  [ $((round % 2)) = 0 ] && order="avx2 avx512"
  for f in $files; do
    line="round $round $f"
    for isa in $order; do line="$line $isa $(ours $isa $f)"; done
    echo "$line"
  done
done
