// Emulated CUDA: cuda_fp16.h (see csrc/cuda/emu/half.h).
#pragma once
#include "../half.h"
