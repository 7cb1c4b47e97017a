// Test support for the shard role's tests: a model of the rows a run of
// ShardWriteBatch messages leaves, what the router will do for them
// (collections in the metadata with their shard streams, publishing to a
// shard's stream), and a fixture with a NATS cluster and its metadata.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "peakknn/v1/cluster.pb.h"
#include "router/cluster_layout.h"
#include "router/cluster_metadata.h"
#include "router/nats/connection.h"
#include "router/nats/publish.h"
#include "router/nats/stream.h"
#include "router/shard_write_batch.h"
#include "tests/nats_test_cluster.h"

namespace peakknn::testing {

inline constexpr int kShardTestDim = 4;

// Distinct per (id, version), so a stale or doubled write shows.
inline std::vector<float> VectorOf(uint64_t id, int version) {
  std::vector<float> v(kShardTestDim);
  for (int d = 0; d < kShardTestDim; ++d) {
    v[d] = static_cast<float>(id) + 0.25f * static_cast<float>(version) +
           0.01f * static_cast<float>(d);
  }
  return v;
}

// Rows by id, as a run of batches leaves them.
using RowModel = std::map<uint64_t, std::vector<float>>;

// One batch of writes: id i gets VectorOf(i, version).
struct Batch {
  v1::ShardWriteBatch::Mode mode;
  std::vector<uint64_t> ids;
  int version = 0;

  std::string Encode() const {
    std::vector<float> vectors;
    if (mode != v1::ShardWriteBatch::MODE_DELETE) {
      for (uint64_t id : ids) {
        const std::vector<float> v = VectorOf(id, version);
        vectors.insert(vectors.end(), v.begin(), v.end());
      }
    }
    return EncodeShardWriteBatch(mode, ids, vectors);
  }

  // What a replica does with it (inserts as upserts).
  void ApplyTo(RowModel& rows) const {
    for (uint64_t id : ids) {
      if (mode == v1::ShardWriteBatch::MODE_DELETE) {
        rows.erase(id);
      } else {
        rows[id] = VectorOf(id, version);
      }
    }
  }
};

// A collection of dim kShardTestDim (L2) in the metadata, and its shards'
// streams (R3): what the router will do on CreateCollection. Returns the
// creation revision.
inline absl::StatusOr<uint64_t> CreateClusterCollection(
    nats::NatsConnection& conn, ClusterMetadata& metadata,
    const std::string& name, int shards,
    int64_t stream_max_bytes = int64_t{1} << 30) {
  v1::ClusterCollection collection;
  collection.mutable_schema()->set_name(name);
  collection.mutable_schema()->set_dim(kShardTestDim);
  collection.mutable_schema()->set_metric(v1::METRIC_L2);
  collection.set_shard_count(shards);
  collection.set_stream_replicas(3);
  ShardStreamSettings settings;
  settings.max_bytes = stream_max_bytes;
  for (int shard = 0; shard < shards; ++shard) {
    absl::StatusOr<nats::StreamInfo> stream = nats::CreateOrUpdateStream(
        conn, ShardStreamConfig(name, shard, settings));
    if (!stream.ok()) return stream.status();
  }
  return metadata.CreateCollection(collection);
}

// Publishes one message to the shard's stream; returns its sequence.
inline absl::StatusOr<uint64_t> PublishToShard(nats::NatsConnection& conn,
                                               const std::string& collection,
                                               int shard,
                                               std::string_view msg_id,
                                               std::string_view payload) {
  absl::StatusOr<nats::PublishAck> ack =
      nats::Publish(conn, ShardSubject(collection, shard), msg_id, payload,
                    {.expected_stream = ShardStreamName(collection, shard)});
  if (!ack.ok()) return ack.status();
  return ack->sequence;
}

// A 3-node NATS cluster (NatsClusterTest) and the cluster's metadata
// buckets in it. Subclasses destroy what uses metadata_ before calling
// TearDown.
class ShardClusterTest : public NatsClusterTest {
 protected:
  void SetUp() override {
    NatsClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    absl::StatusOr<std::unique_ptr<ClusterMetadata>> metadata =
        ClusterMetadata::Open(*conn_, {.replicas = 3});
    ASSERT_TRUE(metadata.ok()) << metadata.status();
    metadata_ = *std::move(metadata);
  }

  void TearDown() override {
    metadata_.reset();
    NatsClusterTest::TearDown();
  }

  std::unique_ptr<ClusterMetadata> metadata_;
};

}  // namespace peakknn::testing
