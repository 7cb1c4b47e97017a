// A one-shot event: one thread calls Notify() once, any number wait for it.
//
// Same contract as absl::Notification, built on std::mutex and
// std::condition_variable so ThreadSanitizer sees the synchronisation
// (Debian's libabsl is not built with TSan, so absl::Notification's
// happens-before edges are invisible to it and it reports false races).
// Everything written before Notify() is visible after WaitForNotification()
// or a HasBeenNotified() that returns true.
#pragma once

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace peakknn {

class Notification {
 public:
  Notification() = default;
  Notification(const Notification&) = delete;
  Notification& operator=(const Notification&) = delete;

  // Wakes every waiter. Call at most once.
  void Notify() {
    std::lock_guard lock(mu_);
    notified_ = true;
    cv_.notify_all();  // under mu_: a waiter may destroy *this once it wakes
  }

  void WaitForNotification() const {
    std::unique_lock lock(mu_);
    cv_.wait(lock,
             [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return notified_; });
  }

  bool HasBeenNotified() const {
    std::lock_guard lock(mu_);
    return notified_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace peakknn
