// The memory a server lets requests hold at once: --max_inflight_bytes.
//
// Every unary call reserves its request's wire size twice (gRPC's buffer
// and the parsed message, both alive until the call ends), and every
// InsertStream batch reserves the same for as long as it is pipelined (read
// but not yet acknowledged). A reservation that does not fit is refused with
// RESOURCE_EXHAUSTED naming the flag, before the request is parsed: a burst
// of large requests, or streams that send batches and never read their
// acks, meets an error, not the kernel's OOM killer. What gRPC buffers
// before a handler runs is bounded by --max_message_bytes per message and
// is not counted here. Thread-safe; a reservation is released when its
// InflightBytes is destroyed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"

namespace peakknn::server {

class InflightBudget;

// Bytes reserved from an InflightBudget until destroyed. Move-only.
class InflightBytes {
 public:
  InflightBytes() = default;
  InflightBytes(InflightBytes&& other) noexcept
      : budget_(std::exchange(other.budget_, nullptr)),
        bytes_(std::exchange(other.bytes_, 0)) {}
  InflightBytes& operator=(InflightBytes&& other) noexcept;
  ~InflightBytes() { Release(); }

  int64_t bytes() const { return bytes_; }
  void Release();

 private:
  friend class InflightBudget;
  InflightBytes(InflightBudget* budget, int64_t bytes)
      : budget_(budget), bytes_(bytes) {}
  InflightBudget* budget_ = nullptr;
  int64_t bytes_ = 0;
};

class InflightBudget {
 public:
  // `on_change` (may be empty) gets every change of the bytes in use, +n on
  // a reservation and -n on its release (a metrics gauge).
  InflightBudget(int64_t max_bytes,
                 std::function<void(int64_t delta)> on_change = {});
  InflightBudget(const InflightBudget&) = delete;
  InflightBudget& operator=(const InflightBudget&) = delete;

  // Reserves `bytes` for `what` (a method name, for the message), or
  // RESOURCE_EXHAUSTED when they do not fit beside what is in use.
  absl::StatusOr<InflightBytes> Reserve(int64_t bytes, std::string_view what);

  int64_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  int64_t max_bytes() const { return max_bytes_; }

 private:
  friend class InflightBytes;
  void Return(int64_t bytes);

  const int64_t max_bytes_;
  const std::function<void(int64_t)> on_change_;
  std::atomic<int64_t> in_use_{0};
};

}  // namespace peakknn::server
