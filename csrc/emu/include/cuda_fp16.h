// Emulated CUDA: cuda_fp16.h (see csrc/emu/half.h).
#pragma once
#include "../half.h"
