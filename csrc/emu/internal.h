// What the emulator's parts share: its settings, the grid runner (scheduler.cc) and the runtime's error state and
// allocation table (runtime.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "device.h"

namespace mvllm::emu {

struct Settings {
  int arch = 90;               // MINI_VLLM_EMU_ARCH: the compute capability reported, x10 (e.g. 75, 80, 90)
  uint64_t seed = 0;           // MINI_VLLM_EMU_SEED: 0 runs threads in index order; else a shuffled, seeded order
  int threads = 1;             // MINI_VLLM_EMU_THREADS: CPU threads running blocks (default: all)
  int sms = 132;               // MINI_VLLM_EMU_SMS: the multiprocessors reported (an H100 SXM's, so launches that
                               // size themselves by the SM count take the decisions they take there)
  size_t memory = 8ull << 30;  // MINI_VLLM_EMU_MEMORY: each device's memory in bytes (suffixes K, M, G)
  int devices = 1;             // MINI_VLLM_EMU_DEVICES: devices reported (1 to 8), for data-parallel engine cores
  std::string digest_file;     // MINI_VLLM_EMU_DIGEST: this file holds a digest of every device-to-host copy so far
};
const Settings& settings();

// Runs every block of the launch; on a fault, returns its error code and sets `what` (kernel, block, thread, reason).
cudaError_t run_grid(const LaunchSpec& spec, const KernelCall& call, std::string* what);

// This thread's last error (cudaGetLastError) and the emulator's account of it (cudaGetErrorString).
cudaError_t set_error(cudaError_t code, const std::string& what);

// Device allocations: whether [p, p + bytes) lies inside one live allocation (host-pinned ones included); if not,
// why not. Checks after a kernel that the guard zones of the allocations it was given are intact.
bool check_range(const void* p, size_t bytes, std::string* why);
// Whether device memory at p belongs to the calling thread's current device (cudaSetDevice), as a launch or a copy
// there needs without peer access; host allocations (cudaMallocHost) belong to every device.
bool check_device(const void* p, std::string* why);
// The calling thread's current device.
int current_device();
bool check_guards(const KernelCall& call, std::string* why);

// A CUDA thread's cp.async copies not yet done (async.cc), in issue order; the first `committed` belong to groups
// whose sizes are in `groups`, oldest first.
struct AsyncCopy {
  void* dst;
  const void* src;
  int bytes, src_bytes;
};
struct AsyncQueue {
  std::vector<AsyncCopy> copies;
  std::vector<size_t> groups;
  size_t committed = 0;
};
AsyncQueue& async_queue();  // the running CUDA thread's (scheduler.cc)

// warp.cc: a warp operation's name, and its results for the lanes of `mask` (lanes[i]: lane i's arguments).
const char* op_name(WarpOpKind k);
void warp_compute(WarpOpKind kind, unsigned mask, WarpArgs* const (&lanes)[32], uint64_t (&results)[32]);

// Folds device-to-host bytes into the digest (MINI_VLLM_EMU_DIGEST).
void digest(const void* p, size_t bytes);

}  // namespace mvllm::emu
