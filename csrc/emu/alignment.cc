// Misaligned accesses in kernels. The emulated build compiles csrc/cuda/*.cu with -fsanitize=alignment, and these are
// the handlers it calls: inside a kernel the access faults the launch (cudaErrorMisalignedAddress, as a GPU does,
// where x86 would quietly load); in host code it throws. The sanitizer build links UBSan's own handlers instead.
#ifndef MINI_VLLM_EMU_SANITIZE
#include <cstdint>
#include <cstdio>
#include <string>

#include "../core/error.h"
#include "internal.h"

namespace {
struct SourceLocation {
  const char* file;
  uint32_t line, column;
};
struct TypeDescriptor {
  uint16_t kind, info;
  char name[1];
};
struct TypeMismatchData {
  SourceLocation loc;
  const TypeDescriptor* type;
  unsigned char log_alignment;
  unsigned char check_kind;
};

[[noreturn]] void report(const TypeMismatchData* d, uintptr_t ptr) {
  char text[512];
  std::snprintf(text, sizeof text, "misaligned access: %s at 0x%llx needs %u-byte alignment (%s:%u)", d->type->name,
                static_cast<unsigned long long>(ptr), 1u << d->log_alignment, d->loc.file, d->loc.line);
  if (mvllm::emu::in_kernel()) mvllm::emu::fault(cudaErrorMisalignedAddress, text);
  mvllm::fail(mvllm::ErrorKind::Cuda, text);
}
}  // namespace

extern "C" {
__attribute__((visibility("hidden"))) void __ubsan_handle_type_mismatch_v1(TypeMismatchData* d, uintptr_t ptr) {
  if (ptr & ((uintptr_t(1) << d->log_alignment) - 1)) report(d, ptr);
}
__attribute__((visibility("hidden"))) void __ubsan_handle_type_mismatch_v1_abort(TypeMismatchData* d, uintptr_t ptr) {
  report(d, ptr);
}
}
#endif
