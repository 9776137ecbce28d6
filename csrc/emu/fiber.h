// Fibers for the emulated device: a stack and a saved stack pointer, switched by a few instructions (x86-64 and
// AArch64) or by ucontext elsewhere. AddressSanitizer is told of every switch, so it follows the stacks.
#pragma once

#include <cstddef>

#if !defined(__x86_64__) && !defined(__aarch64__)
#include <ucontext.h>
#endif

namespace mvllm::emu {

struct Context {
  void* sp = nullptr;
#if !defined(__x86_64__) && !defined(__aarch64__)
  ucontext_t uc;
#endif
  // the stack this context runs on (for AddressSanitizer); null for a CPU thread's own stack
  const void* stack_bottom = nullptr;
  size_t stack_size = 0;
};

// Makes `ctx` start `entry` (which must never return) on the stack [stack, stack + size).
void init_context(Context* ctx, char* stack, size_t size, void (*entry)());
// Saves the running context into `from` and resumes `to`; returns when something switches back to `from`.
void switch_context(Context* from, Context* to);
// The same, for a context that never runs again (a finished fiber): AddressSanitizer drops its fake stack.
void leave_context(Context* from, Context* to);

// The first thing a fiber's entry function calls (AddressSanitizer's half of the switch that started it).
void on_fiber_start();

// Fiber stacks of `bytes` (with a guard page below), reused by the CPU thread that asked for them.
char* take_stack(size_t bytes);
// Forgets AddressSanitizer's red zones on a whole stack whose fiber was abandoned mid-kernel (a fault).
void scrub_stack(char* stack, size_t bytes);
void give_stack(char* stack);
size_t fiber_stack_bytes();

}  // namespace mvllm::emu
