// Emulated CUDA: cuda_bf16.h (see csrc/emu/half.h).
#pragma once
#include "../half.h"
