// A small persistent thread pool: parallel_for splits [0, n) into one contiguous range per thread.
#pragma once

#include <cstdint>
#include <functional>

namespace mvllm::cpu {

int num_threads();
// n <= 0 means "all hardware threads"; MINI_VLLM_NUM_THREADS sets the starting value.
void set_num_threads(int n);
// Gives the calling thread a pool of its own with n threads (n <= 0: all hardware threads), for the rest of its life;
// set_num_threads then resizes that one. Other threads keep the shared pool.
void set_own_threads(int n);

// Calls fn(begin, end) on disjoint ranges covering [0, n). Runs inline when n < 2 * grain or one thread is
// configured; otherwise each range holds at least `grain` items. The caller's thread takes the first range.
// Exceptions thrown by fn are rethrown in the caller after all ranges finish.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Calls fn(i) for every i in [0, n), each thread taking the next index as it finishes one: for tasks of uneven
// cost (put the costly ones first). Exceptions behave as in parallel_for.
void parallel_tasks(int64_t n, const std::function<void(int64_t)>& fn);

}  // namespace mvllm::cpu
