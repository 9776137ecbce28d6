#!/bin/bash
# A/B of addons, alternating, N rounds: decodeTokensPerSecond of generate (q4_0 by default)
F=${F:-q4_0}; N=${N:-6}
cd /work/main
one() { MINI_VLLM_ADDON=$1 MINI_VLLM_CPU_ISA=${ISA:-avx512} node dist/lib/cli.js generate --json -m /tmp/s110/$F.gguf --device cpu -t 0 --ignore-eos -n 128 --prompt "" 2>/dev/null | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.decodeTokensPerSecond.toFixed(1))})"; }
for i in $(seq 1 $N); do
  line="round $i"
  for a in "$@"; do line="$line | $(basename $a) $(one $a)"; done
  echo "$line"
done
