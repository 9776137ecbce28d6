// The emulated device's execution: one CPU thread runs a block at a time, each CUDA thread a fiber on it. A fiber
// runs until it waits (a barrier, a warp operation) or finishes; a barrier or warp operation completes when every
// thread it waits for has arrived. Nothing waits forever: when no fiber can run, the block is reported as a fault.
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fiber.h"
#include "internal.h"

namespace mvllm::emu {

namespace {

enum class State : uint8_t { Ready, Barrier, Warp, Done };

struct Fiber {
  Context ctx;
  uint3 idx;
  int tid = 0;
  State state = State::Ready;
  WarpArgs* args = nullptr;  // the warp operation it waits in
  uint64_t result = 0;
  char* stack = nullptr;  // given when it first runs
  AsyncQueue async;       // its cp.async copies in flight
};

struct Pending {  // a warp operation some lanes have reached
  unsigned mask = 0, arrived = 0;
  WarpOpKind kind = WarpOpKind::Shfl;
  Fiber* lanes[32] = {};
};

struct Warp {
  unsigned exists = 0, done = 0;
  std::vector<Pending> pending;
};

struct Block {
  const LaunchSpec* spec = nullptr;
  const KernelCall* call = nullptr;
  std::vector<Fiber> fibers;
  std::vector<char*> free_stacks;  // most recently freed last: a thread that never waits reuses a cache-hot stack
  char* retired = nullptr;         // the stack of the fiber that just finished, free once the thread left it
  ThreadVars vars{};               // what every thread of the block reads (device.h), less its own index
  std::vector<Warp> warps;
  std::vector<Fiber*> queue;  // a ring of the fibers ready to run: each is in it at most once
  size_t head = 0, tail = 0;
  std::vector<Fiber*> at_barrier, all;
  int live = 0;
  Context sched;
  bool faulted = false;
  cudaError_t code = cudaSuccess;
  std::string what;
  uint64_t rng = 0;  // 0: index order
  uint3 block_idx{};
};

thread_local bool t_in_block = false;  // for in_kernel(): a block is running on this CPU thread

// The running CUDA thread's records, from its stack (device.h): no thread-local lookups on the hot paths.
inline Fiber* self() { return static_cast<Fiber*>(vars().fiber); }
inline Block& block() { return *static_cast<Block*>(vars().block); }
thread_local std::vector<char> t_smem;

uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Queues fibers that may run again, in index order or, with a seed, shuffled (so a missing barrier shows).
void enqueue(Block& b, Fiber** fs, size_t n) {
  if (b.rng)
    for (size_t i = n; i > 1; --i) std::swap(fs[i - 1], fs[splitmix(b.rng) % i]);
  for (size_t i = 0; i < n; ++i) {
    fs[i]->state = State::Ready;
    b.queue[b.tail++ % b.queue.size()] = fs[i];
  }
}

std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

void fiber_main();

// Hands the CPU thread to the next ready fiber of the block, directly, or to the scheduler when none is ready (the
// block has finished, or nothing can go on) or the block faulted.
Context* next_context(Block& b) {
  if (b.faulted || b.head == b.tail) return &b.sched;
  Fiber* f = b.queue[b.head++ % b.queue.size()];
  if (!f->stack) {  // its first run: a stack, its ThreadVars at the base, a frame that enters fiber_main
    if (b.free_stacks.empty()) {
      f->stack = take_stack(fiber_stack_bytes());
    } else {
      f->stack = b.free_stacks.back();
      b.free_stacks.pop_back();
    }
    ThreadVars v = b.vars;
    v.thread_idx = f->idx;
    v.fiber = f;
    *reinterpret_cast<ThreadVars*>(f->stack) = v;
    // NOTE: staggered tops: stacks 64 KB apart would all map their hot top bytes to the same cache sets.
    init_context(&f->ctx, f->stack + 128, fiber_stack_bytes() - 128 - (f->tid % 61) * 64, fiber_main);
  }
  return &f->ctx;
}

// After every switch: the stack a finished fiber left is free now.
inline void reclaim(Block& b) {
  if (b.retired) {
    b.free_stacks.push_back(b.retired);
    b.retired = nullptr;
  }
}

[[noreturn]] void yield_forever() {
  Block& b = block();
  leave_context(&self()->ctx, next_context(b));
  __builtin_unreachable();
}

void yield() {
  Block& b = block();
  Fiber* me = self();
  Context* next = next_context(b);
  if (next != &me->ctx) switch_context(&me->ctx, next);
  reclaim(b);
}

void release_barrier(Block& b) {
  enqueue(b, b.at_barrier.data(), b.at_barrier.size());
  b.at_barrier.clear();
}

// A fiber's whole life: the kernel body, then leaving the block.
void fiber_main() {
  on_fiber_start();
  Block& b = block();
  reclaim(b);
  b.call->run();
  Fiber* f = self();
  f->state = State::Done;
  --b.live;
  Warp& w = b.warps[size_t(f->tid / 32)];
  const unsigned bit = 1u << (f->tid % 32);
  w.done |= bit;
  for (const Pending& p : w.pending)
    if (p.mask & bit)
      fault(cudaErrorLaunchFailure,
            (std::string("lane ") + std::to_string(f->tid % 32) + " exited while lanes " + hex(p.arrived) +
             " of its warp wait for it in " + op_name(p.kind) + " (mask " + hex(p.mask) + ")")
                .c_str());
  if (b.live > 0 && int(b.at_barrier.size()) == b.live) release_barrier(b);
  b.retired = f->stack;
  f->stack = nullptr;
  yield_forever();
}

std::string deadlock_report(const Block& b) {
  std::string s = "no thread can go on: " + std::to_string(b.at_barrier.size()) + " of " + std::to_string(b.live) +
                  " live threads wait at __syncthreads";
  for (size_t w = 0; w < b.warps.size(); ++w)
    for (const Pending& p : b.warps[w].pending)
      s += "; warp " + std::to_string(w) + " lanes " + hex(p.arrived) + " wait in " + op_name(p.kind) + " (mask " +
           hex(p.mask) + ")";
  return s + " (a barrier or warp operation that not every thread it waits for reaches)";
}

}  // namespace

[[noreturn]] void fault(cudaError_t code, const char* what) {
  Block& b = block();
  if (!b.faulted) {
    b.faulted = true;
    b.code = code;
    const uint3 t = self()->idx;
    b.what = std::string(what) + " (thread (" + std::to_string(t.x) + "," + std::to_string(t.y) + "," +
             std::to_string(t.z) + "))";
  }
  yield_forever();
}

int arch() { return settings().arch; }
AsyncQueue& async_queue() { return self()->async; }
bool in_kernel() { return t_in_block; }

void syncthreads() {
  Block& b = block();
  Fiber* f = self();
  f->state = State::Barrier;
  b.at_barrier.push_back(f);
  if (int(b.at_barrier.size()) == b.live) release_barrier(b);
  yield();
}

unsigned active_mask() {
  const Warp& w = block().warps[size_t(self()->tid / 32)];
  return w.exists & ~w.done;
}

uint64_t warp_op(WarpArgs& args) {
  Block& b = block();
  Fiber* f = self();
  const int lane = f->tid % 32;
  const unsigned bit = 1u << lane;
  Warp& w = b.warps[size_t(f->tid / 32)];
  const char* name = op_name(args.kind);
  if (!(args.mask & bit))
    fault(cudaErrorLaunchFailure,
          (std::string(name) + ": the calling lane is not in its mask " + hex(args.mask)).c_str());
  if (args.mask & ~w.exists)
    fault(cudaErrorLaunchFailure, (std::string(name) + ": mask " + hex(args.mask) + " names lanes " +
                                   hex(args.mask & ~w.exists) + " past the block's last thread")
                                      .c_str());
  if (args.mask & w.done)
    fault(cudaErrorLaunchFailure, (std::string(name) + ": mask " + hex(args.mask) + " names lanes " +
                                   hex(args.mask & w.done) + " that have exited")
                                      .c_str());
  if (args.kind <= WarpOpKind::ShflXor && (args.width < 1 || args.width > 32 || (args.width & (args.width - 1))))
    fault(cudaErrorLaunchFailure,
          (std::string(name) + ": width must be a power of two in [1, 32], got " + std::to_string(args.width)).c_str());
  size_t i = 0;
  for (; i < w.pending.size(); ++i) {
    Pending& p = w.pending[i];
    if (p.mask == args.mask) break;
    if (p.mask & args.mask)
      fault(cudaErrorLaunchFailure, (std::string(name) + " with mask " + hex(args.mask) + " meets lanes waiting in " +
                                     op_name(p.kind) + " with mask " + hex(p.mask))
                                        .c_str());
  }
  if (i == w.pending.size()) {
    w.pending.emplace_back();
    w.pending.back().mask = args.mask;
    w.pending.back().kind = args.kind;
  }
  Pending& p = w.pending[i];
  if (p.kind != args.kind)
    fault(cudaErrorLaunchFailure, (std::string("lanes of one warp meet in different operations: ") + name + " and " +
                                   op_name(p.kind) + " (mask " + hex(args.mask) + ")")
                                      .c_str());
  p.lanes[lane] = f;
  p.arrived |= bit;
  f->args = &args;
  f->state = State::Warp;
  if (p.arrived == p.mask) {
    WarpArgs* lanes[32] = {};
    uint64_t results[32] = {};
    for (int l = 0; l < 32; ++l)
      if (p.mask >> l & 1) lanes[l] = p.lanes[l]->args;
    warp_compute(p.kind, p.mask, lanes, results);
    for (int l = 0; l < 32; ++l)
      if (p.mask >> l & 1) p.lanes[l]->result = results[l];
    Fiber* go[32];
    size_t n = 0;
    for (int l = 0; l < 32; ++l)
      if (p.mask >> l & 1) go[n++] = p.lanes[l];
    w.pending.erase(w.pending.begin() + long(i));
    enqueue(b, go, n);
  }
  yield();
  return f->result;
}

namespace {

void run_block(Block& b, uint64_t linear, uint64_t seed) {
  const LaunchSpec& s = *b.spec;
  const unsigned n = s.block.x * s.block.y * s.block.z;
  ThreadVars& v = b.vars;
  v = ThreadVars{};
  v.block_idx = {unsigned(linear % s.grid.x), unsigned(linear / s.grid.x % s.grid.y),
                 unsigned(linear / (uint64_t(s.grid.x) * s.grid.y))};
  v.block_dim = s.block;
  v.grid_dim = s.grid;
  v.block = &b;
  b.block_idx = v.block_idx;
  if (s.smem) {
    t_smem.assign(s.smem + 16, char(0xff));  // uninitialised shared memory reads as NaN
    v.dynamic_smem = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(t_smem.data()) + 15) & ~uintptr_t(15));
  }
  b.fibers.assign(n, Fiber{});
  b.warps.resize((n + 31) / 32);
  for (Warp& w : b.warps) {
    w.exists = w.done = 0;
    w.pending.clear();  // keeps its capacity: no allocation per block
  }
  b.queue.assign(n, nullptr);
  b.head = b.tail = 0;
  b.at_barrier.clear();
  b.live = int(n);
  b.faulted = false;
  b.rng = seed ? seed ^ (linear * 0xd1b54a32d192ed03ull) : 0;
  b.all.resize(n);
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = b.fibers[i];
    f.tid = int(i);
    f.idx = {i % s.block.x, i / s.block.x % s.block.y, i / (s.block.x * s.block.y)};
    b.warps[i / 32].exists |= 1u << (i % 32);
    b.all[i] = &f;
  }
  enqueue(b, b.all.data(), n);
  t_in_block = true;
  // Fibers hand the thread to each other; it comes back here when the block is done, faulted, or stuck.
  while (b.live > 0 && !b.faulted) {
    if (b.head == b.tail) {
      b.faulted = true;
      b.code = cudaErrorLaunchFailure;
      b.what = deadlock_report(b);
      break;
    }
    switch_context(&b.sched, next_context(b));
    reclaim(b);
  }
  // Fibers that never finished (a fault, or nothing could go on) are abandoned: their stacks are free.
  for (Fiber& f : b.fibers) {
    if (!f.stack) continue;
    scrub_stack(f.stack, fiber_stack_bytes());
    b.free_stacks.push_back(f.stack);
  }
  t_in_block = false;
}

// ---- the CPU threads that run blocks ----

struct Grid {
  const LaunchSpec* spec;
  const KernelCall* call;
  uint64_t blocks, seed;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  cudaError_t code = cudaSuccess;
  std::string what;
};

void work(Grid& g) {
  thread_local Block b;
  b.spec = g.spec;
  b.call = g.call;
  for (uint64_t i; !g.failed.load(std::memory_order_relaxed) && (i = g.next.fetch_add(1)) < g.blocks;) {
    run_block(b, i, g.seed);
    if (b.faulted) {
      std::lock_guard<std::mutex> lock(g.m);
      if (!g.failed.exchange(true)) {
        g.code = b.code;
        g.what = "block (" + std::to_string(b.block_idx.x) + "," + std::to_string(b.block_idx.y) + "," +
                 std::to_string(b.block_idx.z) + "): " + b.what;
      }
    }
  }
}

class Pool {
 public:
  explicit Pool(int n) {
    for (int i = 1; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return int(threads_.size()) + 1; }
  void run(Grid& g) {
    {
      std::lock_guard<std::mutex> lock(m_);
      grid_ = &g;
      busy_ = int(threads_.size());
      ++generation_;
    }
    cv_.notify_all();
    work(g);
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [&] { return busy_ == 0; });
    grid_ = nullptr;
  }

 private:
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      Grid* g;
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        g = grid_;
      }
      work(*g);
      std::lock_guard<std::mutex> lock(m_);
      if (--busy_ == 0) done_.notify_all();
    }
  }
  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable cv_, done_;
  Grid* grid_ = nullptr;
  uint64_t generation_ = 0;
  int busy_ = 0;
  bool stop_ = false;
};

std::atomic<uint64_t> g_launches{0};

}  // namespace

cudaError_t run_grid(const LaunchSpec& spec, const KernelCall& call, std::string* what) {
  // One launch at a time, as one device's stream runs them (the addon may be called from several JS threads).
  static std::mutex device;
  std::lock_guard<std::mutex> lock(device);
  Grid g;
  g.spec = &spec;
  g.call = &call;
  g.blocks = uint64_t(spec.grid.x) * spec.grid.y * spec.grid.z;
  const uint64_t launch = g_launches.fetch_add(1);
  g.seed = settings().seed ? settings().seed * 0x9e3779b97f4a7c15ull + launch + 1 : 0;
  static Pool* pool = settings().threads > 1 ? new Pool(settings().threads) : nullptr;  // lives to the end
  if (pool && g.blocks > 1)
    pool->run(g);
  else
    work(g);
  if (g.failed) *what = g.what;
  return g.code;
}

}  // namespace mvllm::emu
