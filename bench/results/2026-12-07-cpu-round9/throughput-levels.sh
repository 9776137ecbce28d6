#!/bin/bash
# Round 9's levels on `bench throughput`: 32 prompts of 128 in / 64 out on each of FILES (the stories110M-shaped GGUFs
# under /tmp/s110, as round 6's decode-side-by-side.sh made them), under avx512 and avx2 in turn (the order reversed
# each round), ROUNDS rounds. Prints each run's output tok/s.
cd /work/main
files=${FILES:-f32 q4_0}
echo "# mini-vllm bench throughput --device cpu --num-prompts 32 --input-len 128 --output-len 64 on $files; levels alternate; $(date -u); HEAD $(git rev-parse --short HEAD)"
for round in $(seq 1 ${ROUNDS:-3}); do
  order="avx512 avx2"
  [ $((round % 2)) = 0 ] && order="avx2 avx512"
  for f in $files; do
    for isa in $order; do
      t=$(MINI_VLLM_CPU_ISA=$isa node dist/lib/cli.js bench throughput -m /tmp/s110/$f.gguf --device cpu --num-prompts 32 \
        --input-len 128 --output-len 64 2>/dev/null | grep -i "^output token throughput" | awk '{print $NF}')
      echo "round $round $f $isa $t"
    done
  done
done
