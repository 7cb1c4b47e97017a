#include "server/inflight_budget.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace peakknn::server {

InflightBytes& InflightBytes::operator=(InflightBytes&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void InflightBytes::Release() {
  if (budget_ != nullptr) budget_->Return(bytes_);
  budget_ = nullptr;
  bytes_ = 0;
}

InflightBudget::InflightBudget(int64_t max_bytes,
                               std::function<void(int64_t delta)> on_change)
    : max_bytes_(max_bytes), on_change_(std::move(on_change)) {}

absl::StatusOr<InflightBytes> InflightBudget::Reserve(int64_t bytes,
                                                      std::string_view what) {
  int64_t used = in_use_.load(std::memory_order_relaxed);
  do {
    if (bytes > max_bytes_ - used) {
      return absl::ResourceExhaustedError(
          absl::StrCat(AV(what), ": the server holds ", used,
                       " bytes of requests in flight; ", bytes,
                       " more would pass --max_inflight_bytes=", max_bytes_,
                       " (retry later, or send smaller requests)"));
    }
  } while (!in_use_.compare_exchange_weak(used, used + bytes,
                                          std::memory_order_relaxed));
  if (on_change_) on_change_(bytes);
  return InflightBytes(this, bytes);
}

void InflightBudget::Return(int64_t bytes) {
  in_use_.fetch_sub(bytes, std::memory_order_relaxed);
  if (on_change_) on_change_(-bytes);
}

}  // namespace peakknn::server
