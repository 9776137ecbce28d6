#!/bin/bash
cd /work/main
for round in 1 2; do
  for build in after before; do
    addon=/work/main/build/Release/mini_vllm.node; [ $build = before ] && addon=/tmp/before/build/Release/mini_vllm.node
    for isa in avx512 avx2; do
      t=$(MINI_VLLM_ADDON=$addon MINI_VLLM_CPU_ISA=$isa node dist/lib/cli.js bench throughput -m /tmp/s110/f32.gguf --device cpu --num-prompts 32 --input-len 128 --output-len 64 2>/dev/null | grep -i "output token throughput" | head -1)
      echo "round $round $build $isa: $t"
    done
  done
done
