#include "base/periodic_task.h"

#include <algorithm>
#include <utility>

namespace peakknn {

PeriodicTask::PeriodicTask(absl::Duration interval, std::function<void()> run)
    // Capped: steady_clock::now() plus a saturated (292-year) nanosecond
    // duration would overflow and never wait.
    : interval_(std::min(interval, absl::Hours(24 * 365 * 100))),
      run_(std::move(run)),
      thread_([this] { Loop(); }) {}

PeriodicTask::~PeriodicTask() { Stop(); }

void PeriodicTask::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeriodicTask::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, absl::ToChronoNanoseconds(interval_),
                 [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    run_();
    lock.lock();
  }
}

}  // namespace peakknn
