// cp.async on the emulated device: a copy is queued when issued and done by the cp.async.wait_group that covers its
// group, as the PTX ISA allows at the latest, so a kernel that reads the destination before waiting reads what was
// there before (stale data, or the 0xFF poison of fresh shared memory) and its tests fail. Copies never waited for
// are dropped when the thread ends (their results were never read).
#include <cstring>
#include <string>

#include "internal.h"

namespace mvllm::emu {
namespace {

void complete(AsyncQueue& q, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const AsyncCopy& c = q.copies[i];
    if (c.src_bytes > 0) std::memcpy(c.dst, c.src, size_t(c.src_bytes));
    if (c.src_bytes < c.bytes) std::memset(static_cast<char*>(c.dst) + c.src_bytes, 0, size_t(c.bytes - c.src_bytes));
  }
  q.copies.erase(q.copies.begin(), q.copies.begin() + long(n));
}

}  // namespace

void cp_async(void* dst, const void* src, int bytes, int src_bytes) {
  if (bytes != 4 && bytes != 8 && bytes != 16)
    fault(cudaErrorLaunchFailure,
          ("cp.async: the copy size must be 4, 8 or 16 bytes, got " + std::to_string(bytes)).c_str());
  if (src_bytes < 0 || src_bytes > bytes)
    fault(cudaErrorLaunchFailure,
          ("cp.async: src-size " + std::to_string(src_bytes) + " outside [0, " + std::to_string(bytes) + "]").c_str());
  if ((reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src)) % unsigned(bytes))
    fault(cudaErrorMisalignedAddress,
          ("cp.async: a " + std::to_string(bytes) + "-byte copy needs both addresses aligned to its size").c_str());
  std::string why;
  if (src_bytes > 0 && !check_range(src, size_t(src_bytes), &why))
    fault(cudaErrorIllegalAddress, ("cp.async: the source is not device memory: " + why).c_str());
  async_queue().copies.push_back({dst, src, bytes, src_bytes});
}

void cp_async_commit() {
  AsyncQueue& q = async_queue();
  q.groups.push_back(q.copies.size() - q.committed);
  q.committed = q.copies.size();
}

void cp_async_wait(int n) {
  AsyncQueue& q = async_queue();
  size_t done = 0;
  while (q.groups.size() > size_t(n < 0 ? 0 : n)) {
    done += q.groups.front();
    q.groups.erase(q.groups.begin());
  }
  complete(q, done);
  q.committed -= done;
}

void cp_async_wait_all() {
  cp_async_commit();
  cp_async_wait(0);
}

}  // namespace mvllm::emu
