#include "base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

namespace peakknn {

// One ParallelFor call. Tasks are claimed with an atomic counter; completion
// and the number of workers inside the loop are tracked under the pool mutex
// so the caller can destroy the Loop only once nobody can touch it.
struct ThreadPool::Loop {
  const std::function<void(int64_t)>* fn = nullptr;
  int64_t n = 0;
  std::atomic<int64_t> next{0};
  int64_t done = 0;  // guarded by the pool's mu_
  int active = 0;    // workers inside Drain; guarded by mu_

  bool Claimable() const { return next.load(std::memory_order_relaxed) < n; }
};

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) {
    threads =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  workers_.reserve(threads - 1);
  for (int i = 0; i + 1 < threads; ++i) {
    workers_.emplace_back([this] { WorkerMain(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

ThreadPool& ThreadPool::Default() {
  static ThreadPool* pool = [] {
    int threads = 0;
    if (const char* env = std::getenv("PEAKKNN_THREADS")) {
      threads = std::atoi(env);
    }
    return new ThreadPool(threads);
  }();
  return *pool;
}

int64_t ThreadPool::Drain(Loop* loop) {
  int64_t ran = 0;
  for (int64_t i = loop->next.fetch_add(1); i < loop->n;
       i = loop->next.fetch_add(1)) {
    (*loop->fn)(i);
    ++ran;
  }
  return ran;
}

void ThreadPool::WorkerMain() {
  std::unique_lock lock(mu_);
  while (true) {
    // The loop is picked by the same scan that found work: `next` moves
    // outside mu_ (Drain), so a second scan could find the loop exhausted
    // and no loop at all (the fuzzer's find: end() was dereferenced).
    Loop* loop = nullptr;
    auto has_work = [this, &loop]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (stopping_) return true;
      auto it = std::find_if(loops_.begin(), loops_.end(),
                             [](Loop* l) { return l->Claimable(); });
      loop = it == loops_.end() ? nullptr : *it;
      return loop != nullptr;
    };
    work_cv_.wait(lock, has_work);
    if (stopping_) return;
    // Still in loops_ (its owner removes it under mu_), so alive; Drain runs
    // nothing if it was exhausted meanwhile.
    ++loop->active;
    lock.unlock();
    const int64_t ran = Drain(loop);
    lock.lock();
    loop->done += ran;
    --loop->active;
    // The owner may be waiting for this loop; it is removed from loops_
    // before the owner waits, so wake all waiters (several loops may be in
    // flight at once).
    if (loop->done == loop->n && loop->active == 0) done_cv_.notify_all();
  }
}

void ThreadPool::ParallelFor(int64_t n,
                             const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || workers_.empty()) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  Loop loop;
  loop.fn = &fn;
  loop.n = n;
  {
    std::lock_guard lock(mu_);
    loops_.push_back(&loop);
  }
  work_cv_.notify_all();
  const int64_t ran = Drain(&loop);
  std::unique_lock lock(mu_);
  loop.done += ran;
  loops_.erase(std::find(loops_.begin(), loops_.end(), &loop));
  auto finished = [&loop]() { return loop.done == loop.n && loop.active == 0; };
  done_cv_.wait(lock, finished);
}

}  // namespace peakknn
