// Emulated CUDA: NVTX ranges do nothing (no profiler can attach to the emulated device).
#pragma once
inline int nvtxRangePushA(const char*) { return 0; }
inline int nvtxRangePop() { return 0; }
