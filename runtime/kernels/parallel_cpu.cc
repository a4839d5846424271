// The CPU kernels' thread pool (ParallelFor in kernels_cpu.h). Why not OpenMP: libgomp's
// workers spin at every barrier for ~300k iterations before they sleep, and the policy is read
// from the environment once, before main(). With more threads than free cores (another process
// on a core) the spinning workers take the cores the working ones need: a SmolLM2 decode step
// measured up to 6x slower at 2 threads than at 1. These workers spin briefly, then spin
// yielding the core (Await: long enough to catch the next linear of the same decode step), and
// then block on a condition variable, so a busy core costs context switches, not a spin-out.
//
// Rounds: the caller publishes (body, tasks, threads) and bumps the generation; every worker
// acknowledges every round (those beyond `threads` without working), so no worker can read a
// later round's state as its own. Work is split statically: thread k runs tasks
// [k*T/n, (k+1)*T/n), as OpenMP's schedule(static) did, so which thread computes a row never
// changes its value (each row is computed by one thread, the same arithmetic).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/kernels/kernels_cpu.h"

namespace augur::qkernels {
namespace {

inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long an idle worker (or the caller waiting for the workers) stays awake: spinning the
// first kSpinPure, then yielding the core between checks, then asleep. Waking a sleeping thread
// costs tens of microseconds on a VM (an inter-processor interrupt), more than the gaps between
// the linears of one decode step; yielding keeps a busy core available to whoever needs it.
// AUGUR_KERNEL_SPIN_US overrides the total (0: sleep at once).
constexpr int64_t kSpinPureUs = 20;
int64_t SpinUs() {
  static const int64_t us = [] {
    const char* v = std::getenv("AUGUR_KERNEL_SPIN_US");
    return v != nullptr ? std::max<int64_t>(0, std::atoll(v)) : int64_t{1000};
  }();
  return us;
}

// Waits until done() holds: spin, then spin yielding, then `sleep` (which must block until it
// holds). Returns without sleeping when it held in time.
template <typename Done, typename Sleep>
void Await(const Done& done, const Sleep& sleep) {
  const auto start = std::chrono::steady_clock::now();
  const auto pure = start + std::chrono::microseconds(std::min(kSpinPureUs, SpinUs()));
  const auto until = start + std::chrono::microseconds(SpinUs());
  for (int i = 1; !done(); ++i) {
    Pause();
    if ((i & 31) != 0) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return sleep();
    if (now >= pure) std::this_thread::yield();
  }
}

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      gen_.fetch_add(1, std::memory_order_release);
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  void Run(int64_t tasks, int threads, const std::function<void(int64_t, int64_t)>& body) {
    std::unique_lock<std::mutex> caller(run_mu_, std::try_to_lock);
    if (!caller.owns_lock()) return body(0, tasks);  // another thread's round is running: serial
    Grow(threads - 1);
    body_ = &body;
    tasks_ = tasks;
    threads_ = threads;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> l(mu_);
      gen_.fetch_add(1, std::memory_order_release);
    }
    if (sleepers_.load(std::memory_order_acquire) > 0) work_cv_.notify_all();
    body(0, Block(tasks, threads, 1));
    // Wait for every worker's acknowledgement.
    const auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    Await(done, [&] {
      std::unique_lock<std::mutex> l(mu_);
      done_cv_.wait(l, done);
    });
  }

 private:
  // The end of thread k's block of tasks (k = 0..n): tasks * k / n.
  static int64_t Block(int64_t tasks, int n, int k) { return tasks * k / n; }

  void Grow(int workers) {
    while (static_cast<int>(workers_.size()) < workers) {
      const int index = static_cast<int>(workers_.size()) + 1;  // thread 0 is the caller
      const uint64_t seen = gen_.load(std::memory_order_acquire);
      workers_.emplace_back([this, index, seen] { Work(index, seen); });
    }
  }

  void Work(int index, uint64_t seen) {
    for (;;) {
      // Wait for the next round.
      const auto next = [&] { return gen_.load(std::memory_order_acquire) != seen; };
      Await(next, [&] {
        std::unique_lock<std::mutex> l(mu_);
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        work_cv_.wait(l, next);
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      });
      seen = gen_.load(std::memory_order_acquire);
      if (stop_) return;
      if (index < threads_) {
        const int64_t t0 = Block(tasks_, threads_, index), t1 = Block(tasks_, threads_, index + 1);
        if (t1 > t0) (*body_)(t0, t1);
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> l(mu_);
        done_cv_.notify_one();
      }
    }
  }

  std::mutex run_mu_;  // one round at a time
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> pending_{0}, sleepers_{0};
  bool stop_ = false;
  // The round's state, written before gen_ is bumped and read after it is seen.
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t tasks_ = 0;
  int threads_ = 1;
  std::vector<std::thread> workers_;
};

Pool& ThePool() {
  static Pool* pool = new Pool();  // never destroyed: workers may outlive static destructors
  return *pool;
}

}  // namespace

int KernelThreads() { return omp_get_max_threads(); }

// AUGUR_KERNEL_THREADS=openmp: the same split on OpenMP's threads instead, to measure one
// against the other (scripts/bench_omp_wait.sh).
bool UseOpenMp() {
  static const bool on = [] {
    const char* v = std::getenv("AUGUR_KERNEL_THREADS");
    return v != nullptr && std::strcmp(v, "openmp") == 0;
  }();
  return on;
}

void ParallelFor(int64_t tasks, const std::function<void(int64_t, int64_t)>& body) {
  const int threads = static_cast<int>(std::min<int64_t>(KernelThreads(), tasks));
  if (threads <= 1) return body(0, tasks);
  if (UseOpenMp()) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int k = 0; k < threads; ++k) {
      const int64_t t0 = tasks * k / threads, t1 = tasks * (k + 1) / threads;
      if (t1 > t0) body(t0, t1);
    }
    return;
  }
  ThePool().Run(tasks, threads, body);
}

}  // namespace augur::qkernels
