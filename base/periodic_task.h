// Runs a function every `interval` on a thread of its own until stopped:
// the one place that owns a "sleep, check the stop flag, work" loop.
//
// Stop() wakes the thread at once (it never waits out an interval), lets a
// run in progress finish, and joins the thread. Built on std::mutex and
// std::condition_variable, not absl::Mutex, so ThreadSanitizer sees the
// synchronisation (Debian's libabsl is not TSan-built).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace peakknn {

class PeriodicTask {
 public:
  // Starts the thread; the first run is one `interval` from now. `interval`
  // must be positive; intervals above 100 years wait 100 years.
  PeriodicTask(absl::Duration interval, std::function<void()> run);
  // Stops (see Stop).
  ~PeriodicTask();
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  // Idempotent; must not be called from inside `run`.
  void Stop();

 private:
  void Loop();

  const absl::Duration interval_;
  const std::function<void()> run_;
  std::mutex mu_;
  std::condition_variable cv_;  // signalled when stopping_ is set
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace peakknn
