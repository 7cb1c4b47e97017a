// server/request_pool.h: what an InsertStream's pool of parsed requests
// keeps between batches (issue 12 item 7: an idle stream kept its largest
// batch's buffers, 30-37 MiB after one 40 MiB batch).
#include "server/request_pool.h"

#include <memory>

#include "gtest/gtest.h"

namespace peakknn::server {
namespace {

void Fill(v1::InsertRequest& request, int rows, int dim) {
  request.mutable_ids()->Reserve(rows);
  request.mutable_vectors()->Reserve(rows * dim);
  for (int i = 0; i < rows; ++i) request.add_ids(i);
  for (int i = 0; i < rows * dim; ++i) request.add_vectors(1.0f);
}

TEST(RequestPoolTest, ReusesARequestOfTypicalSizeWithItsBuffers) {
  auto pool = std::make_shared<RequestPool>();
  const v1::InsertRequest* first;
  {
    std::shared_ptr<v1::InsertRequest> request = pool->Get();
    Fill(*request, 1024, 128);  // 520 KiB
    first = request.get();
  }
  EXPECT_EQ(pool->free_requests(), 1u);
  EXPECT_GE(pool->free_bytes(), 1024 * 128 * 4);
  std::shared_ptr<v1::InsertRequest> again = pool->Get();
  EXPECT_EQ(again.get(), first);
  EXPECT_EQ(again->ids_size(), 0);                     // cleared
  EXPECT_GE(again->vectors().Capacity(), 1024 * 128);  // buffers kept
  EXPECT_EQ(pool->free_bytes(), 0);
}

TEST(RequestPoolTest, FreesABigRequestInsteadOfKeepingIt) {
  auto pool = std::make_shared<RequestPool>();
  {
    std::shared_ptr<v1::InsertRequest> request = pool->Get();
    Fill(*request, 80'000, 128);  // 40 MiB
  }
  EXPECT_EQ(pool->free_requests(), 0u);
  EXPECT_EQ(pool->free_bytes(), 0);
  std::shared_ptr<v1::InsertRequest> fresh = pool->Get();
  EXPECT_EQ(RequestPool::BufferBytes(*fresh), 0);
}

TEST(RequestPoolTest, KeepsAtMostMaxFreeBytes) {
  auto pool = std::make_shared<RequestPool>();
  {
    std::vector<std::shared_ptr<v1::InsertRequest>> held;
    for (int i = 0; i < 64; ++i) {
      held.push_back(pool->Get());
      Fill(*held.back(), 1024, 128);
    }
  }
  EXPECT_LE(pool->free_bytes(), RequestPool::kMaxFreeBytes);
  EXPECT_GT(pool->free_requests(), 0u);
  EXPECT_LT(pool->free_requests(), 64u);
}

}  // namespace
}  // namespace peakknn::server
