#include "client/progress_bar.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace peakknn::client {

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)) {}

std::string ProgressBar::Render(const std::string& label,
                                const std::string& unit, int64_t done,
                                int64_t total, absl::Duration elapsed) {
  constexpr int kWidth = 30;
  const double fraction =
      total > 0 ? std::min(1.0, static_cast<double>(done) / total) : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds = absl::ToDoubleSeconds(elapsed);
  const double rate = seconds > 0 ? done / seconds : 0;
  std::string eta = "--";
  if (rate > 0 && done < total) {
    eta = absl::FormatDuration(
        absl::Seconds(static_cast<int64_t>((total - done) / rate + 0.5)));
  } else if (done >= total) {
    eta = "0s";
  }
  return absl::StrFormat("%s [%s%s] %3.0f%% %d/%d %s  %.0f %s/s  ETA %s", label,
                         std::string(filled, '#'),
                         std::string(kWidth - filled, '.'), fraction * 100,
                         done, total, unit, rate, unit, eta);
}

void ProgressBar::Draw(int64_t done) {
  std::fprintf(
      stderr, "\r%s\x1b[K",
      Render(label_, unit_, done, total_, absl::Now() - start_).c_str());
  std::fflush(stderr);
}

void ProgressBar::Update(int64_t done) {
  std::lock_guard lock(mu_);
  done_ = std::max(done_, done);
  const absl::Time now = absl::Now();
  if (now - last_draw_ < absl::Milliseconds(100)) return;
  last_draw_ = now;
  Draw(done_);
}

void ProgressBar::Finish() {
  std::lock_guard lock(mu_);
  Draw(done_);
  std::fprintf(stderr, "\n");
}

}  // namespace peakknn::client
