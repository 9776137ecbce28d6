// Emulated CUDA: cuda_runtime.h. The runtime subset mini-vllm calls (runtime.cc) and the device language the kernels
// use (device.h), so csrc/cuda/*.cu compile with the host compiler and run on the CPU.
#pragma once
#include "../device.h"
#include "../runtime_api.h"
