// Parsed InsertRequests for reuse by one InsertStream.
//
// The core holds each request it was handed until the batch is done; then
// the request comes back here, cleared but keeping its buffers, so a steady
// stream parses into memory it already has (a fresh 1024 x 128 batch is
// 512 KiB of new pages, 128 page faults). What the pool keeps is bounded,
// because an idle stream keeps its pool: a request whose buffers exceed
// kMaxPooledRequestBytes is freed instead of kept (one 40 MiB batch must not
// pin 40 MiB for the life of the stream), and the free list holds at most
// kMaxFreeBytes of buffers. The pool lives until the stream and the core
// have let go of every request. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "peakknn/v1/vector_search.pb.h"

namespace peakknn::server {

class RequestPool : public std::enable_shared_from_this<RequestPool> {
 public:
  // A request's buffers above this are freed on return (bytes; a
  // 1024 x 128 f32 batch holds about 520 KiB).
  static constexpr int64_t kMaxPooledRequestBytes = int64_t{1} << 20;
  // Buffers of all free requests together (bytes).
  static constexpr int64_t kMaxFreeBytes = int64_t{4} << 20;

  // Make with std::make_shared (Get hands out references to the pool).
  RequestPool() = default;

  // An empty request; returned to the pool when the last owner lets go.
  std::shared_ptr<v1::InsertRequest> Get();

  // Free requests and their buffer bytes.
  size_t free_requests() const;
  int64_t free_bytes() const;

  // The bytes of a request's repeated buffers (capacity, not size).
  static int64_t BufferBytes(const v1::InsertRequest& request);

 private:
  void Put(std::unique_ptr<v1::InsertRequest> request);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<v1::InsertRequest>> free_ ABSL_GUARDED_BY(mu_);
  int64_t free_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace peakknn::server
