// Where the store reports what recovery and maintenance did, one line per
// event, and a throttle for the lines an ongoing fault would repeat (a log
// segment that cannot be created fails again on every attempt; a
// checkpoint that fails is retried every second).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace peakknn {

// Receives one line, without a trailing newline. Called from the store's
// threads; must be thread-safe and must not call back into the store.
using LogFunction = std::function<void(std::string_view)>;

// `log`, or when it is empty a function that writes "peakknn: <line>" to
// standard error.
LogFunction LogOrStderr(LogFunction log);

// Passes at most one line per `interval` to its LogFunction. The lines held
// back meanwhile are counted, and the next line passed says how many there
// were, so a fault that persists is logged once per interval, not once per
// attempt. Thread-safe.
class LogThrottle {
 public:
  LogThrottle(absl::Duration interval, LogFunction log)
      : interval_(interval), log_(std::move(log)) {}

  // Logs `line` (with the count of lines held back since the last one) if
  // the interval since the last line logged has passed, else counts it.
  void Log(std::string_view line, absl::Time now = absl::Now());

 private:
  const absl::Duration interval_;
  const LogFunction log_;
  std::mutex mu_;
  absl::Time last_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t held_back_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace peakknn
