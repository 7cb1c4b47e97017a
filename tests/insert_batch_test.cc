// client/insert_batch.h: the hand-assembled wire bytes parse as the
// v1::InsertRequest the server expects, with the caller's values.
#include "client/insert_batch.h"

#include <bit>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace peakknn::client {
namespace {

using ::testing::ElementsAreArray;

v1::InsertRequest RoundTrip(const InsertBatch& batch) {
  grpc::ByteBuffer buffer;
  const grpc::Status s = SerializeInsertBatch(batch, &buffer);
  EXPECT_TRUE(s.ok()) << s.error_message();
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  v1::InsertRequest parsed;
  EXPECT_TRUE(parsed.ParseFromString(bytes));
  return parsed;
}

TEST(InsertBatchTest, ParsesAsTheInsertRequestItEncodes) {
  // Large ids (10-byte varints), special floats (bit patterns, not values,
  // must survive) and enough rows for a multi-byte length prefix.
  std::vector<uint64_t> ids = {0, 1, std::numeric_limits<uint64_t>::max()};
  std::vector<float> vectors = {
      1.5f, -0.0f, std::numeric_limits<float>::min(), 3e38f, -2.25f, 7.0f};
  for (int i = 0; i < 1000; ++i) {
    ids.push_back(1000 + i);
    vectors.push_back(static_cast<float>(i) * 0.5f);
    vectors.push_back(-static_cast<float>(i));
  }
  InsertBatch batch;
  batch.collection = "vecs";
  batch.ids = ids;
  batch.vectors = vectors;
  batch.batch_tag = 42;
  batch.upsert = true;
  const v1::InsertRequest r = RoundTrip(batch);
  EXPECT_EQ(r.collection(), "vecs");
  EXPECT_THAT(r.ids(), ElementsAreArray(ids));
  ASSERT_EQ(r.vectors_size(), static_cast<int>(vectors.size()));
  for (size_t i = 0; i < vectors.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(r.vectors(static_cast<int>(i))),
              std::bit_cast<uint32_t>(vectors[i]))
        << "float " << i;
  }
  EXPECT_EQ(r.batch_tag(), 42u);
  EXPECT_TRUE(r.upsert());
}

TEST(InsertBatchTest, LaterMessagesAndEmptyBatches) {
  const uint64_t id = 7;
  const float v[] = {1, 2};
  InsertBatch later;  // no collection name: the stream's first one applies
  later.ids = {&id, 1};
  later.vectors = v;
  later.batch_tag = 3;
  v1::InsertRequest r = RoundTrip(later);
  EXPECT_TRUE(r.collection().empty());
  EXPECT_THAT(r.ids(), ElementsAreArray({uint64_t{7}}));
  EXPECT_THAT(r.vectors(), ElementsAreArray({1.0f, 2.0f}));
  EXPECT_FALSE(r.upsert());

  InsertBatch empty;  // the server answers "at least one id"; it must parse
  empty.collection = "c";
  r = RoundTrip(empty);
  EXPECT_EQ(r.collection(), "c");
  EXPECT_EQ(r.ids_size(), 0);
  EXPECT_EQ(r.vectors_size(), 0);
}

}  // namespace
}  // namespace peakknn::client
