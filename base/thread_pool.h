// A fixed pool of worker threads for data-parallel loops.
//
// ParallelFor(n, fn) runs fn(0..n-1) across the workers and the calling
// thread and returns when all are done. Several threads may call ParallelFor
// at once (e.g. two collections searching); their tasks share the workers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace peakknn {

class ThreadPool {
 public:
  // threads = 0 means one per hardware thread. The pool starts threads - 1
  // workers: the calling thread is the last one.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn);

  // A process-wide pool sized by PEAKKNN_THREADS or the hardware.
  static ThreadPool& Default();

 private:
  struct Loop;
  void WorkerMain();
  // Runs tasks of `loop` until none are left to claim; returns how many.
  static int64_t Drain(Loop* loop);

  std::mutex mu_;
  // Workers wait on work_cv_ for a claimable loop (or stopping_); callers of
  // ParallelFor wait on done_cv_ for their loop to finish.
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<Loop*> loops_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace peakknn
