// Fibers (fiber.h): the context switch and the stacks.
#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "device.h"

#if defined(__SANITIZE_ADDRESS__)
#define MVLLM_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MVLLM_EMU_ASAN 1
#endif
#endif
#ifdef MVLLM_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__)
// mvllm_emu_switch(save, next): pushes the callee-saved registers, stores the stack pointer in *save, loads `next`,
// pops the registers saved there and returns into that context.
extern "C" void mvllm_emu_switch(void** save, void* next);
asm(R"(
  .text
  .p2align 4
  .globl mvllm_emu_switch
  .hidden mvllm_emu_switch
  .type mvllm_emu_switch, @function
mvllm_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size mvllm_emu_switch, .-mvllm_emu_switch
)");
#elif defined(__aarch64__)
extern "C" void mvllm_emu_switch(void** save, void* next);
asm(R"(
  .text
  .p2align 4
  .globl mvllm_emu_switch
  .hidden mvllm_emu_switch
  .type mvllm_emu_switch, %function
mvllm_emu_switch:
  sub sp, sp, #176
  stp x19, x20, [sp, #0]
  stp x21, x22, [sp, #16]
  stp x23, x24, [sp, #32]
  stp x25, x26, [sp, #48]
  stp x27, x28, [sp, #64]
  stp x29, x30, [sp, #80]
  stp d8, d9, [sp, #96]
  stp d10, d11, [sp, #112]
  stp d12, d13, [sp, #128]
  stp d14, d15, [sp, #144]
  mov x9, sp
  str x9, [x0]
  mov sp, x1
  ldp x19, x20, [sp, #0]
  ldp x21, x22, [sp, #16]
  ldp x23, x24, [sp, #32]
  ldp x25, x26, [sp, #48]
  ldp x27, x28, [sp, #64]
  ldp x29, x30, [sp, #80]
  ldp d8, d9, [sp, #96]
  ldp d10, d11, [sp, #112]
  ldp d12, d13, [sp, #128]
  ldp d14, d15, [sp, #144]
  add sp, sp, #176
  ret
  .size mvllm_emu_switch, .-mvllm_emu_switch
)");
#endif

namespace mvllm::emu {
namespace {

size_t page_size() {
  static const size_t p = size_t(sysconf(_SC_PAGESIZE));
  return p;
}

thread_local std::vector<char*> t_free_stacks;
// The CPU thread's own stack, as AddressSanitizer reports it when the first fiber starts (a switch back to the thread
// must name the stack it lands on).
[[maybe_unused]] thread_local const void* t_thread_bottom = nullptr;
[[maybe_unused]] thread_local size_t t_thread_size = 0;

}  // namespace

size_t fiber_stack_bytes() { return kFiberStackBytes; }

void init_context(Context* ctx, char* stack, size_t size, void (*entry)()) {
#ifdef MVLLM_EMU_ASAN
  // A reused stack still carries the red zones of the outermost frames its last fiber never returned from (a fiber
  // that faulted is scrubbed whole, scrub_stack).
  const size_t used = size < (size_t(32) << 10) ? size : size_t(32) << 10;
  __asan_unpoison_memory_region(stack + size - used, used);
#endif
  ctx->stack_bottom = stack;
  ctx->stack_size = size;
#if defined(__x86_64__)
  auto top = reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                              // the return address `entry` never uses: rsp % 16 == 8 on entry
  *--sp = reinterpret_cast<void*>(entry);       // where the switch's `ret` goes
  for (int i = 0; i < 6; ++i) *--sp = nullptr;  // rbp, rbx, r12-r15
  ctx->sp = sp;
#elif defined(__aarch64__)
  auto top = reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top - 176);
  for (int i = 0; i < 22; ++i) sp[i] = nullptr;
  sp[11] = reinterpret_cast<void*>(entry);  // x30, the link register the switch's `ret` uses
  ctx->sp = sp;
#else
  getcontext(&ctx->uc);
  ctx->uc.uc_stack.ss_sp = stack;
  ctx->uc.uc_stack.ss_size = size;
  ctx->uc.uc_link = nullptr;
  makecontext(&ctx->uc, entry, 0);
#endif
}

namespace {
inline void do_switch(Context* from, Context* to, [[maybe_unused]] bool leaving) {
#ifdef MVLLM_EMU_ASAN
  void* fake = nullptr;
  const bool thread_stack = to->stack_bottom == nullptr;
  __sanitizer_start_switch_fiber(leaving ? nullptr : &fake, thread_stack ? t_thread_bottom : to->stack_bottom,
                                 thread_stack ? t_thread_size : to->stack_size);
#endif
#if defined(__x86_64__) || defined(__aarch64__)
  mvllm_emu_switch(&from->sp, to->sp);
#else
  swapcontext(&from->uc, &to->uc);
#endif
#ifdef MVLLM_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}
}  // namespace

void on_fiber_start() {
#ifdef MVLLM_EMU_ASAN
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(nullptr, &bottom, &size);
  if (!t_thread_bottom) {  // the first fiber of this CPU thread came from the thread's own stack
    t_thread_bottom = bottom;
    t_thread_size = size;
  }
#endif
}

void switch_context(Context* from, Context* to) { do_switch(from, to, false); }
void leave_context(Context* from, Context* to) { do_switch(from, to, true); }

void scrub_stack([[maybe_unused]] char* stack, [[maybe_unused]] size_t bytes) {
#ifdef MVLLM_EMU_ASAN
  __asan_unpoison_memory_region(stack, bytes);
#endif
}

char* take_stack(size_t bytes) {
  if (!t_free_stacks.empty()) {
    char* s = t_free_stacks.back();
    t_free_stacks.pop_back();
    return s;
  }
  // Aligned to its size (device.h: a thread finds its ThreadVars at the base), a guard page below.
  const size_t guard = page_size();
  void* p = mmap(nullptr, 2 * bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t base = (reinterpret_cast<uintptr_t>(p) + guard + bytes - 1) & ~uintptr_t(bytes - 1);
  mprotect(reinterpret_cast<char*>(base - guard), guard, PROT_NONE);  // an overflow faults here
  return reinterpret_cast<char*>(base);
}

void give_stack(char* stack) { t_free_stacks.push_back(stack); }

}  // namespace mvllm::emu
