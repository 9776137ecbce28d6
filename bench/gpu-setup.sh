# Sourced by bench/gpu-check.sh and bench/gpu-engine.sh on the GPU machine (or, GPU_DRY_RUN=emu, here on the emulated
# device), with $out set: a `section` header, the
# machine and the commit, Node and the packed addon, dist and packages from .device/ (bench/gpu-pack.sh), backends().
section() { printf '\n======== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

section "machine and commit"
nvidia-smi || true
if [ "${GPU_DRY_RUN:-}" = emu ]; then
  # A dry run where there is no GPU: this checkout's dist/, node_modules and emulated addon (npm run build:emu).
  export MINI_VLLM_ADDON="$PWD/build-emu/Release/mini_vllm.node" MINI_VLLM_COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
else
  source .device/setup.sh
  [ -d .device/models ] && export MINI_VLLM_MODELS="$PWD/.device/models/"
  export MINI_VLLM_ADDON="$PWD/.device/mini_vllm.node" MINI_VLLM_COMMIT="$(head -n 1 .device/COMMIT 2>/dev/null || echo unknown)"
  [ -e node_modules ] || ln -s .device/node_modules node_modules
  [ -e dist ] || ln -s .device/dist dist
fi
echo "commit: $MINI_VLLM_COMMIT"
node --input-type=module -e "import { backends } from './dist/lib/index.js'; console.log(JSON.stringify(backends(), null, 2));" | tee "$out/backends.json"
