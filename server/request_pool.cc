#include "server/request_pool.h"

#include <utility>

namespace peakknn::server {

std::shared_ptr<v1::InsertRequest> RequestPool::Get() {
  std::unique_ptr<v1::InsertRequest> request;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      request = std::move(free_.back());
      free_.pop_back();
      free_bytes_ -= BufferBytes(*request);
    }
  }
  if (request == nullptr) request = std::make_unique<v1::InsertRequest>();
  return std::shared_ptr<v1::InsertRequest>(
      request.release(), [pool = shared_from_this()](v1::InsertRequest* r) {
        pool->Put(std::unique_ptr<v1::InsertRequest>(r));
      });
}

void RequestPool::Put(std::unique_ptr<v1::InsertRequest> request) {
  request->Clear();  // keeps the repeated fields' capacity
  const int64_t bytes = BufferBytes(*request);
  if (bytes > kMaxPooledRequestBytes) return;  // freed here
  std::lock_guard<std::mutex> lock(mu_);
  if (free_bytes_ + bytes > kMaxFreeBytes) return;
  free_bytes_ += bytes;
  free_.push_back(std::move(request));
}

size_t RequestPool::free_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_.size();
}

int64_t RequestPool::free_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_bytes_;
}

int64_t RequestPool::BufferBytes(const v1::InsertRequest& request) {
  return static_cast<int64_t>(request.ids().Capacity()) * 8 +
         static_cast<int64_t>(request.vectors().Capacity()) * 4;
}

}  // namespace peakknn::server
