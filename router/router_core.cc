#include "router/router_core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "base/string_view.h"
#include "router/nats/stream.h"
#include "server/convert.h"

namespace peakknn {
namespace {

using server::DurabilityToProto;
using server::SchemaFromProto;
using server::SchemaToProto;

absl::Status NoSuchCollection(std::string_view name) {
  return absl::NotFoundError(
      absl::StrCat("collection \"", AV(name), "\" does not exist"));
}

}  // namespace

RouterCore::RouterCore(nats::NatsConnection& conn, ClusterMetadata& metadata,
                       RouterOptions options)
    : conn_(conn),
      metadata_(metadata),
      options_(std::move(options)),
      channels_(options_.channels),
      view_(metadata, options_.view),
      context_{.conn = &conn,
               .view = &view_,
               .channels = &channels_,
               .fan_out = {.attempt_timeout = options_.attempt_timeout},
               .publish_timeout = options_.publish_timeout} {}

RouterCore::~RouterCore() = default;

absl::Status RouterCore::CreateCollection(const CollectionSchema& schema,
                                          Durability durability) {
  PEAKKNN_RETURN_IF_ERROR(view_.Ready());
  v1::ClusterCollection collection;
  SchemaToProto(schema, collection.mutable_schema());
  collection.set_shard_count(static_cast<uint32_t>(options_.shards));
  collection.set_stream_replicas(
      static_cast<uint32_t>(options_.streams.replicas));
  collection.set_default_durability(DurabilityToProto(
      durability == Durability::kDefault ? Durability::kFsync : durability));
  collection.set_created_unix_ms(absl::ToUnixMillis(absl::Now()));
  // Streams first: a record is only ever visible with its streams in place.
  // Creating an existing collection's streams again changes nothing.
  for (int shard = 0; shard < options_.shards; ++shard) {
    PEAKKNN_RETURN_IF_ERROR(
        nats::CreateOrUpdateStream(
            conn_, ShardStreamConfig(schema.name, shard, options_.streams))
            .status());
  }
  absl::StatusOr<uint64_t> created = metadata_.CreateCollection(collection);
  if (absl::IsAlreadyExists(created.status())) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection \"", schema.name, "\" already exists"));
  }
  PEAKKNN_RETURN_IF_ERROR(created.status());
  // So that this router's next request sees it (others within a refresh),
  // once the replicas have it.
  const absl::Time deadline = absl::Now() + options_.create_wait;
  PEAKKNN_RETURN_IF_ERROR(view_.Refresh());
  while (!Usable(*view_.Snapshot(), schema.name, options_.shards) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    PEAKKNN_RETURN_IF_ERROR(view_.Refresh());
  }
  return absl::OkStatus();
}

bool RouterCore::Usable(const ClusterSnapshot& snapshot,
                        const std::string& name, int shards) const {
  for (int shard = 0; shard < shards; ++shard) {
    const std::vector<v1::ClusterMember>& members = snapshot.MembersOf(shard);
    if (std::none_of(members.begin(), members.end(),
                     [&](const v1::ClusterMember& m) {
                       return m.applied_sequence().contains(name);
                     })) {
      return false;
    }
  }
  return true;
}

absl::Status RouterCore::DropCollection(std::string_view name) {
  PEAKKNN_RETURN_IF_ERROR(view_.Ready());
  absl::StatusOr<CollectionRecord> record = metadata_.GetCollection(name);
  if (absl::IsNotFound(record.status())) return NoSuchCollection(name);
  PEAKKNN_RETURN_IF_ERROR(record.status());
  PEAKKNN_RETURN_IF_ERROR(metadata_.DeleteCollection(name));
  for (uint32_t shard = 0; shard < record->collection.shard_count(); ++shard) {
    absl::Status deleted = nats::DeleteStream(
        conn_, ShardStreamName(name, static_cast<int>(shard)));
    if (!deleted.ok() && !absl::IsNotFound(deleted)) return deleted;
  }
  return view_.Refresh();
}

absl::StatusOr<CollectionInfo> RouterCore::InfoOf(
    const ClusterSnapshot& snapshot, const CollectionRecord& record) const {
  const v1::ClusterCollection& collection = record.collection;
  CollectionInfo info;
  PEAKKNN_ASSIGN_OR_RETURN(info.schema,
                           SchemaFromProto(collection.schema(), 0));
  info.default_durability = Durability::kNone;  // see routed_collection.h
  info.live_rows = snapshot.LiveRows(
      collection.schema().name(), static_cast<int>(collection.shard_count()));
  info.rows = info.live_rows;
  return info;
}

absl::StatusOr<std::vector<CollectionInfo>> RouterCore::ListCollections()
    const {
  PEAKKNN_RETURN_IF_ERROR(view_.Ready());
  const std::shared_ptr<const ClusterSnapshot> snapshot = view_.Snapshot();
  std::vector<CollectionInfo> infos;
  for (const auto& [name, record] : snapshot->collections) {
    PEAKKNN_ASSIGN_OR_RETURN(CollectionInfo info, InfoOf(*snapshot, record));
    infos.push_back(std::move(info));
  }
  return infos;
}

absl::StatusOr<CollectionInfo> RouterCore::DescribeCollection(
    std::string_view name) const {
  PEAKKNN_RETURN_IF_ERROR(view_.Ready());
  const std::shared_ptr<const ClusterSnapshot> snapshot = view_.Snapshot();
  const auto it = snapshot->collections.find(std::string(name));
  if (it == snapshot->collections.end()) return NoSuchCollection(name);
  return InfoOf(*snapshot, it->second);
}

absl::StatusOr<std::shared_ptr<ServedCollection>> RouterCore::OpenCollection(
    std::string_view name) const {
  PEAKKNN_RETURN_IF_ERROR(view_.Ready());
  const std::shared_ptr<const ClusterSnapshot> snapshot = view_.Snapshot();
  const auto it = snapshot->collections.find(std::string(name));
  if (it == snapshot->collections.end()) return NoSuchCollection(name);
  const CollectionRecord& record = it->second;
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<RoutedCollection>& handle = handles_[std::string(name)];
  if (handle == nullptr ||
      handle->creation_revision() != record.creation_revision) {
    PEAKKNN_ASSIGN_OR_RETURN(CollectionSchema schema,
                             SchemaFromProto(record.collection.schema(), 0));
    handle =
        std::make_shared<RoutedCollection>(context_, std::move(schema), record);
  }
  return handle;
}

}  // namespace peakknn
