// The CPU thread pool: persistent workers that spin briefly between jobs, then sleep.
#include "../parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace mvllm::cpu {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class Pool {
 public:
  Pool() {
    int n = int(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("MINI_VLLM_NUM_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) n = v;
    }
    resize(std::max(1, n));
  }
  explicit Pool(int n) { resize(std::max(1, n)); }
  ~Pool() { stop_workers(); }

  int size() {
    std::lock_guard<std::mutex> run(run_mu_);
    return int(workers_.size()) + 1;
  }

  void resize(int n) {
    std::lock_guard<std::mutex> run(run_mu_);
    stop_workers();
    stop_ = false;
    // NOTE: new workers start at the current generation; from 0 they would run the last job again, whose
    // function is long gone.
    const uint64_t now = generation_.load();
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, now] { worker(i, now); });
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    // One job at a time: a second JS thread (a worker) calling in waits here rather than sharing the pool.
    std::lock_guard<std::mutex> run(run_mu_);
    int64_t parts =
        std::min<int64_t>(int64_t(workers_.size()) + 1, std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
    if (parts <= 1) {
      fn(0, n);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_ = n;
      parts_ = int(parts);
      pending_.store(int(parts) - 1, std::memory_order_relaxed);
      error_ = nullptr;
      ++generation_;
    }
    cv_.notify_all();
    run_part(0);
    // The other parts are short (one op's slice): spin briefly, then sleep.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      cpu_relax();
      if (spin > 2000) {
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.wait(lk, [this] { return pending_.load(std::memory_order_acquire) == 0; });
        break;
      }
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_part(int i) {
    int64_t begin = n_ * i / parts_, end = n_ * (i + 1) / parts_;
    try {
      if (begin < end) (*fn_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void worker(int index, uint64_t seen) {
    for (;;) {
      // Ops come back to back in a forward pass: spin ~20-50 us for the next job before sleeping.
      for (int spin = 0; spin < 20000 && generation_.load(std::memory_order_acquire) == seen; ++spin) cpu_relax();
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_.load();
        if (index >= parts_) continue;
      }
      run_part(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_one();
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex run_mu_;  // serialises jobs and resizes
  std::mutex mu_;      // guards the job fields below
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int parts_ = 0;
  std::atomic<int> pending_{0};
  std::exception_ptr error_;
  std::atomic<uint64_t> generation_{0};  // written under mu_, also read without it by spinning workers
  bool stop_ = false;
};

Pool& shared_pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can deadlock.
  static Pool* p = new Pool();
  return *p;
}

// A JS thread's own pool (a data-parallel engine core's worker): its ops run on its threads alone, beside the other
// cores' rather than queued behind them on the shared pool. Joined when that thread exits; never set on the main one.
thread_local std::unique_ptr<Pool> tl_own;

Pool& pool() { return tl_own ? *tl_own : shared_pool(); }

int all_threads() { return std::max(1, int(std::thread::hardware_concurrency())); }

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n > 0 ? n : all_threads()); }
void set_own_threads(int n) { tl_own = std::make_unique<Pool>(n > 0 ? n : all_threads()); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  pool().run(n, grain, fn);
}

void parallel_tasks(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(n, num_threads());
  parallel_for(workers, 1, [&](int64_t, int64_t) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed))
      fn(i);
  });
}

}  // namespace mvllm::cpu
