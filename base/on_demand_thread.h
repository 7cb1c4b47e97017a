// A worker thread that exists only while its owner has work: the owner
// starts it when work arrives, and it ends itself once it has waited
// idle() without finding any. So an owner nobody uses (a collection with no
// writes or searches) holds no thread, and a process with thousands of idle
// owners holds no thousands of threads. A pool shared by every owner would
// also do that, but would make each owner's ordering (a collection's commit
// order, a batcher's queue) depend on the pool's; one thread per busy owner
// keeps each owner's loop as simple as before.
//
// The protocol, with `mu` the owner's mutex that guards its work queue:
//   - the owner queues work and calls Start(body) under mu. Start starts a
//     thread running `body` unless one runs (the owner then notifies its
//     condition variable instead).
//   - `body` waits for work on the owner's condition variable for at most
//     idle(). When it finds none, it calls Exiting() under mu and returns
//     without taking mu again.
//   - to stop, the owner sets its stop flag under mu (so that no Start
//     follows), wakes `body`, and calls Join() without mu.
// Invariant: while work is queued a thread runs (every queued item comes
// with a Start, and `body` exits only with the queue empty under mu).
//
// Not thread-safe on its own: Start, Exiting and running() need the
// owner's mutex; Join needs the owner stopped.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

#include "absl/time/time.h"

namespace peakknn {

class OnDemandThread {
 public:
  // `idle`: how long the thread waits for work before ending; capped at 100
  // years (steady_clock::now() plus a saturated duration would overflow and
  // never wait).
  explicit OnDemandThread(absl::Duration idle);
  // Joins (see Join).
  ~OnDemandThread();
  OnDemandThread(const OnDemandThread&) = delete;
  OnDemandThread& operator=(const OnDemandThread&) = delete;

  // Under the owner's mutex: starts `body` on a new thread unless one runs.
  // Returns true when it started one.
  bool Start(std::function<void()> body);
  // Under the owner's mutex, by `body` just before it returns.
  void Exiting() { running_ = false; }
  bool running() const { return running_; }
  // The longest `body` waits for work before it ends.
  std::chrono::nanoseconds idle() const { return idle_; }

  // Without the owner's mutex, once the owner has stopped (no Start can
  // follow): waits for the last thread to end. Idempotent.
  void Join();

 private:
  const std::chrono::nanoseconds idle_;
  bool running_ = false;
  std::thread thread_;
};

}  // namespace peakknn
