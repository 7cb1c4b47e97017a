// The cluster metadata model (router/cluster_metadata.h): record encoding,
// the NATS layout, the id -> shard hash (pinned forever), and the metadata
// store against a real 3-node NATS JetStream cluster.
#include "router/cluster_metadata.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/cluster_layout.h"
#include "router/shard_hash.h"
#include "tests/nats_test_cluster.h"

namespace peakknn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::ClusterCollection Collection(const std::string& name, int shards) {
  v1::ClusterCollection c;
  c.mutable_schema()->set_name(name);
  c.mutable_schema()->set_dim(128);
  c.mutable_schema()->set_metric(v1::METRIC_COSINE);
  c.mutable_schema()->set_dtype(v1::DTYPE_BF16);
  c.mutable_schema()->set_default_recall_target(0.9);
  c.set_shard_count(shards);
  c.set_stream_replicas(3);
  c.set_default_durability(v1::DURABILITY_FSYNC);
  c.set_created_unix_ms(1700000000123);
  return c;
}

v1::ClusterMember Member(int shard, const std::string& replica) {
  v1::ClusterMember m;
  m.set_shard(shard);
  m.set_replica(replica);
  m.set_address("127.0.0.1:50071");
  (*m.mutable_applied_sequence())["docs"] = 42;
  m.set_heartbeat_unix_ms(1700000000456);
  return m;
}

// The same id must map to the same shard forever: these values were
// computed once and are frozen. If this test fails, the hash changed, and
// every cluster's data would be on the wrong shards.
TEST(ShardHashTest, FixedVectorsNeverChange) {
  struct Vector {
    uint64_t id;
    int shards[6];  // for 1, 2, 3, 7, 16 and 1024 shards
  };
  const Vector vectors[] = {
      {0x0ULL, {0, 1, 2, 3, 8, 258}},
      {0x1ULL, {0, 0, 0, 3, 15, 527}},
      {0x2ULL, {0, 0, 0, 0, 0, 19}},
      {0x3ULL, {0, 1, 1, 4, 14, 473}},
      {0x2aULL, {0, 0, 0, 0, 0, 151}},
      {0x3e8ULL, {0, 0, 0, 0, 12, 639}},
      {0x75bcd15ULL, {0, 0, 0, 4, 10, 534}},
      {0xdeadbeefULL, {0, 0, 0, 6, 11, 846}},
      {0x8000000000000000ULL, {0, 0, 0, 0, 8, 994}},
      {0xffffffffffffffffULL, {0, 0, 2, 3, 3, 650}},
  };
  const int counts[] = {1, 2, 3, 7, 16, 1024};
  for (const Vector& v : vectors) {
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(ShardForId(v.id, counts[i]), v.shards[i])
          << "id " << v.id << ", " << counts[i] << " shards";
    }
  }
}

TEST(ShardHashTest, SequentialIdsSpreadEvenlyAndGrowingMovesOnlyToTheNewShard) {
  constexpr int kIds = 100000;
  for (int shards : {2, 3, 7}) {
    std::vector<int> counts(shards);
    for (uint64_t id = 0; id < kIds; ++id) {
      const int s = ShardForId(id, shards);
      ASSERT_GE(s, 0);
      ASSERT_LT(s, shards);
      ++counts[s];
      // Consistent: with one more shard, an id stays or moves to the new one.
      const int grown = ShardForId(id, shards + 1);
      ASSERT_TRUE(grown == s || grown == shards) << "id " << id;
    }
    for (int c : counts) {
      EXPECT_NEAR(c, kIds / shards, kIds / shards / 20) << shards << " shards";
    }
  }
}

TEST(ClusterLayoutTest, Names) {
  EXPECT_EQ(CollectionKey("docs"), "collections.docs");
  EXPECT_EQ(MemberKey(3, "r-1"), "members.3.r-1");
  EXPECT_EQ(ShardStreamName("my-docs", 2), "peakknn_my-docs_2");
  EXPECT_EQ(ShardSubject("my-docs", 2), "peakknn.writes.my-docs.2");
  const nats::StreamConfig config =
      ShardStreamConfig("docs", 1, ShardStreamSettings{});
  EXPECT_EQ(config.name, "peakknn_docs_1");
  EXPECT_THAT(config.subjects, ElementsAre("peakknn.writes.docs.1"));
  EXPECT_EQ(config.replicas, 3);
  EXPECT_EQ(config.max_bytes, int64_t{1} << 30);
  EXPECT_EQ(config.max_age, absl::Hours(168));
  EXPECT_EQ(config.duplicate_window, absl::Minutes(2));
}

TEST(ClusterMetadataCodecTest, RoundTrips) {
  const v1::ClusterCollection c = Collection("docs", 4);
  absl::StatusOr<v1::ClusterCollection> c2 =
      DecodeCollection("collections.docs", EncodeCollection(c));
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_EQ(c2->SerializeAsString(), c.SerializeAsString());
  EXPECT_EQ(c2->schema().dim(), 128u);
  EXPECT_EQ(c2->shard_count(), 4u);

  const v1::ClusterMember m = Member(1, "r0");
  absl::StatusOr<v1::ClusterMember> m2 =
      DecodeMember("members.1.r0", EncodeMember(m));
  ASSERT_TRUE(m2.ok()) << m2.status();
  EXPECT_EQ(m2->address(), "127.0.0.1:50071");
  EXPECT_EQ(m2->applied_sequence().at("docs"), 42u);
}

TEST(ClusterMetadataCodecTest, CorruptOrMisplacedRecordsAreDataLoss) {
  const std::string docs = EncodeCollection(Collection("docs", 4));
  absl::StatusOr<v1::ClusterCollection> misplaced =
      DecodeCollection("collections.other", docs);
  EXPECT_EQ(misplaced.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(misplaced.status().message(),
              HasSubstr("record collections.other: holds collection docs"));

  absl::StatusOr<v1::ClusterCollection> garbage =
      DecodeCollection("collections.docs", "\xff\xff\xff");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(garbage.status().message(), HasSubstr("not a ClusterCollection"));

  absl::StatusOr<v1::ClusterCollection> no_shards = DecodeCollection(
      "collections.docs", EncodeCollection(Collection("docs", 0)));
  EXPECT_EQ(no_shards.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(no_shards.status().message(), HasSubstr("shard_count 0"));

  absl::StatusOr<v1::ClusterMember> wrong_shard =
      DecodeMember("members.2.r0", EncodeMember(Member(1, "r0")));
  EXPECT_EQ(wrong_shard.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(wrong_shard.status().message(),
              HasSubstr("holds replica r0 of shard 1"));
}

class ClusterMetadataTest : public testing::NatsClusterTest {
 protected:
  std::unique_ptr<ClusterMetadata> Open(absl::Duration member_ttl) {
    absl::StatusOr<std::unique_ptr<ClusterMetadata>> metadata =
        ClusterMetadata::Open(*conn_,
                              {.replicas = 3, .member_ttl = member_ttl});
    EXPECT_TRUE(metadata.ok()) << metadata.status();
    return metadata.ok() ? *std::move(metadata) : nullptr;
  }
};

TEST_F(ClusterMetadataTest, CollectionsAreCreatedOnceListedAndDropped) {
  std::unique_ptr<ClusterMetadata> metadata = Open(absl::Seconds(10));
  ASSERT_NE(metadata, nullptr);
  absl::StatusOr<uint64_t> docs =
      metadata->CreateCollection(Collection("docs", 2));
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_TRUE(metadata->CreateCollection(Collection("alpha", 1)).ok());

  absl::StatusOr<uint64_t> twice =
      metadata->CreateCollection(Collection("docs", 3));
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(twice.status().message(), HasSubstr("collections.docs"));
  absl::StatusOr<uint64_t> bad =
      metadata->CreateCollection(Collection("a.b", 2));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);

  absl::StatusOr<CollectionRecord> got = metadata->GetCollection("docs");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->creation_revision, *docs);
  EXPECT_EQ(got->collection.shard_count(), 2u);

  absl::StatusOr<std::vector<CollectionRecord>> all =
      metadata->ListCollections();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].collection.schema().name(), "alpha");
  EXPECT_EQ((*all)[1].collection.schema().name(), "docs");

  // Dropped, then created again: a new incarnation, a new revision.
  ASSERT_TRUE(metadata->DeleteCollection("docs").ok());
  EXPECT_EQ(metadata->GetCollection("docs").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<uint64_t> again =
      metadata->CreateCollection(Collection("docs", 4));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_GT(*again, *docs);
}

TEST_F(ClusterMetadataTest, MembersDropOutWhenTheyStopHeartbeating) {
  std::unique_ptr<ClusterMetadata> metadata = Open(absl::Seconds(1));
  ASSERT_NE(metadata, nullptr);
  ASSERT_TRUE(metadata->Heartbeat(Member(1, "b")).ok());
  ASSERT_TRUE(metadata->Heartbeat(Member(0, "a")).ok());
  absl::Status bad = metadata->Heartbeat(Member(0, "no.dots"));
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);

  absl::StatusOr<std::vector<v1::ClusterMember>> members =
      metadata->ListMembers();
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ((*members)[0].replica(), "a");
  EXPECT_EQ((*members)[1].replica(), "b");

  // "a" keeps heartbeating, "b" stops: within a few TTLs only "a" is left.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && members->size() != 1) {
    ASSERT_TRUE(metadata->Heartbeat(Member(0, "a")).ok());
    absl::SleepFor(absl::Milliseconds(200));
    members = metadata->ListMembers();
    ASSERT_TRUE(members.ok()) << members.status();
  }
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ((*members)[0].replica(), "a");
}

}  // namespace
}  // namespace peakknn
