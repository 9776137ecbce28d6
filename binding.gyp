{
  # CPU-only build of the addon with node-gyp (the CUDA backend builds with CMake only).
  # Built by `npm run build:gyp` in build-gyp/ so it does not replace the cmake-js build.
  "variables": {
    "cpu_arch%": "x86-64"
  },
  "targets": [
    {
      "target_name": "mini_vllm",
      # csrc/sources.mjs is the one source list (CMakeLists.txt reads it too)
      # One level of CPU kernels, the baseline's (csrc/cpu/level.h): the levels above it are built by CMake only.
      "sources": ["<!@(node csrc/sources.mjs cpu)", "<!@(node csrc/sources.mjs kernels)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "MINI_VLLM_CPU_ARCH=\"<(cpu_arch)\"",
        "MVLLM_CPU_LEVEL=lvl_base"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=<(cpu_arch)", "-fexceptions"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3"]
      }
    }
  ]
}
