#include "base/on_demand_thread.h"

#include <algorithm>
#include <utility>

namespace peakknn {

OnDemandThread::OnDemandThread(absl::Duration idle)
    : idle_(absl::ToChronoNanoseconds(std::clamp(
          idle, absl::ZeroDuration(), absl::Hours(24 * 365 * 100)))) {}

OnDemandThread::~OnDemandThread() { Join(); }

bool OnDemandThread::Start(std::function<void()> body) {
  if (running_) return false;
  // The previous thread, if any, called Exiting() under the owner's mutex,
  // which the caller holds now, and returns without taking it again: this
  // join waits for nothing but that return.
  if (thread_.joinable()) thread_.join();
  thread_ = std::thread(std::move(body));
  running_ = true;
  return true;
}

void OnDemandThread::Join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace peakknn
