// A one-line terminal progress bar on stderr: done/total rows, rate and
// ETA, redrawn in place at most every 100 ms.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace peakknn::client {

class ProgressBar {
 public:
  // `unit` names what is counted ("rows").
  ProgressBar(std::string label, int64_t total, std::string unit = "rows");
  // Thread-safe; `done` never decreases.
  void Update(int64_t done);
  // Draws the final state and ends the line.
  void Finish();

  // The text of the bar for `done` after `elapsed` (no terminal codes).
  static std::string Render(const std::string& label, const std::string& unit,
                            int64_t done, int64_t total,
                            absl::Duration elapsed);

 private:
  void Draw(int64_t done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string label_;
  const int64_t total_;
  const std::string unit_;
  const absl::Time start_ = absl::Now();
  std::mutex mu_;
  absl::Time last_draw_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace peakknn::client
