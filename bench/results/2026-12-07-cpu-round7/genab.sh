# generate --json decodeTokensPerSecond (128 tokens, greedy, 2 threads) on a GGUF, addons alternating (order flips)
cd /work/main
for r in $(seq 1 ${ROUNDS:-10}); do
  line="round $r"
  set -- $ADDONS; [ $((r % 2)) = 0 ] && set -- $(echo $ADDONS | awk '{for(i=NF;i>0;i--) printf "%s ", $i}')
  for a in "$@"; do
    v=$(MINI_VLLM_ADDON=/tmp/r7/addon-$a.node node dist/lib/cli.js generate --json -m /tmp/s110/${FILE:-q4_0}.gguf --device cpu -t 0 --ignore-eos -n 128 --prompt "" 2>/dev/null | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s).decodeTokensPerSecond.toFixed(1)))")
    line="$line $a $v"
  done
  echo "$line"
done
