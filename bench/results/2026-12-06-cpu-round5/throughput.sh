#!/bin/bash
# bench throughput on the F32 stories110M-shaped GGUF, per level, this round's build (HEAD) and the one before
# (9db14b4, a worktree at /tmp/base9db), alternating, two rounds
for round in 1 2; do
  for tree in /work/main /tmp/base9db; do
    for isa in avx512 avx2; do
      t=$(cd $tree && MINI_VLLM_CPU_ISA=$isa node dist/lib/cli.js bench throughput -m /tmp/s110/f32.gguf --device cpu \
        --num-prompts 32 --input-len 128 --output-len 64 2>/dev/null | grep -i "output token throughput" | head -1)
      echo "round $round $(cd $tree && git rev-parse --short HEAD) $isa: $t"
    done
  done
done
