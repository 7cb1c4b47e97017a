#include "router/cluster_metadata.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/string_view.h"
#include "router/cluster_layout.h"
#include "router/shard_hash.h"

namespace peakknn {
namespace {

absl::Status CheckCollection(const v1::ClusterCollection& collection) {
  const std::string& name = collection.schema().name();
  if (!IsNameToken(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection name \"", name,
                     "\" is not 1+ characters of [A-Za-z0-9_-]"));
  }
  if (collection.shard_count() < 1 || collection.shard_count() > kMaxShards) {
    return absl::InvalidArgumentError(absl::StrCat(
        "collection ", name, ": shard_count ", collection.shard_count(),
        " is not in [1, ", kMaxShards, "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckMember(const v1::ClusterMember& member) {
  if (!IsNameToken(member.replica())) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica name \"", member.replica(),
                     "\" is not 1+ characters of [A-Za-z0-9_-]"));
  }
  if (member.shard() >= static_cast<uint32_t>(kMaxShards)) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica ", member.replica(), ": shard ", member.shard(),
                     " is not below ", kMaxShards));
  }
  return absl::OkStatus();
}

absl::Status Corrupt(std::string_view key, std::string_view why) {
  return absl::DataLossError(
      absl::StrCat("cluster metadata record ", AV(key), ": ", AV(why)));
}

}  // namespace

std::string EncodeCollection(const v1::ClusterCollection& collection) {
  return collection.SerializeAsString();
}

absl::StatusOr<v1::ClusterCollection> DecodeCollection(std::string_view key,
                                                       std::string_view bytes) {
  v1::ClusterCollection collection;
  if (!collection.ParseFromArray(bytes.data(),
                                 static_cast<int>(bytes.size()))) {
    return Corrupt(key, "not a ClusterCollection message");
  }
  if (absl::Status s = CheckCollection(collection); !s.ok()) {
    return Corrupt(key, SV(s.message()));
  }
  if (CollectionKey(collection.schema().name()) != key) {
    return Corrupt(
        key, absl::StrCat("holds collection ", collection.schema().name()));
  }
  return collection;
}

std::string EncodeMember(const v1::ClusterMember& member) {
  return member.SerializeAsString();
}

absl::StatusOr<v1::ClusterMember> DecodeMember(std::string_view key,
                                               std::string_view bytes) {
  v1::ClusterMember member;
  if (!member.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Corrupt(key, "not a ClusterMember message");
  }
  if (absl::Status s = CheckMember(member); !s.ok()) {
    return Corrupt(key, SV(s.message()));
  }
  if (MemberKey(static_cast<int>(member.shard()), member.replica()) != key) {
    return Corrupt(key, absl::StrCat("holds replica ", member.replica(),
                                     " of shard ", member.shard()));
  }
  return member;
}

absl::StatusOr<std::unique_ptr<ClusterMetadata>> ClusterMetadata::Open(
    nats::NatsConnection& conn, const ClusterMetadataOptions& options) {
  PEAKKNN_ASSIGN_OR_RETURN(
      std::unique_ptr<nats::KvBucket> meta,
      nats::KvBucket::CreateOrBind(conn, {.name = std::string(kMetadataBucket),
                                          .replicas = options.replicas,
                                          .history = 8}));
  PEAKKNN_ASSIGN_OR_RETURN(
      std::unique_ptr<nats::KvBucket> members,
      nats::KvBucket::CreateOrBind(conn, {.name = std::string(kMembersBucket),
                                          .replicas = options.replicas,
                                          .history = 1,
                                          .ttl = options.member_ttl}));
  return std::unique_ptr<ClusterMetadata>(
      new ClusterMetadata(std::move(meta), std::move(members)));
}

absl::StatusOr<uint64_t> ClusterMetadata::CreateCollection(
    const v1::ClusterCollection& collection) {
  PEAKKNN_RETURN_IF_ERROR(CheckCollection(collection));
  return meta_->Create(CollectionKey(collection.schema().name()),
                       EncodeCollection(collection));
}

absl::StatusOr<CollectionRecord> ClusterMetadata::GetCollection(
    std::string_view name) {
  const std::string key = CollectionKey(name);
  PEAKKNN_ASSIGN_OR_RETURN(nats::KvEntry entry, meta_->Get(key));
  PEAKKNN_ASSIGN_OR_RETURN(v1::ClusterCollection collection,
                           DecodeCollection(key, entry.value));
  return CollectionRecord{.collection = std::move(collection),
                          .creation_revision = entry.revision};
}

absl::StatusOr<std::vector<CollectionRecord>>
ClusterMetadata::ListCollections() {
  PEAKKNN_ASSIGN_OR_RETURN(std::vector<std::string> keys, meta_->Keys());
  std::sort(keys.begin(), keys.end());
  std::vector<CollectionRecord> records;
  const std::string prefix = CollectionKey("");
  for (const std::string& key : keys) {
    if (key.rfind(prefix, 0) != 0) continue;  // another kind of record
    absl::StatusOr<CollectionRecord> record =
        GetCollection(std::string_view(key).substr(prefix.size()));
    if (absl::IsNotFound(record.status())) continue;  // dropped meanwhile
    if (!record.ok()) return record.status();
    records.push_back(*std::move(record));
  }
  return records;
}

absl::Status ClusterMetadata::DeleteCollection(std::string_view name) {
  return meta_->Delete(CollectionKey(name));
}

absl::Status ClusterMetadata::Heartbeat(const v1::ClusterMember& member) {
  PEAKKNN_RETURN_IF_ERROR(CheckMember(member));
  return members_
      ->Put(MemberKey(static_cast<int>(member.shard()), member.replica()),
            EncodeMember(member))
      .status();
}

absl::StatusOr<std::vector<v1::ClusterMember>> ClusterMetadata::ListMembers() {
  PEAKKNN_ASSIGN_OR_RETURN(std::vector<std::string> keys, members_->Keys());
  std::vector<v1::ClusterMember> members;
  for (const std::string& key : keys) {
    absl::StatusOr<nats::KvEntry> entry = members_->Get(key);
    if (absl::IsNotFound(entry.status())) continue;  // expired meanwhile
    if (!entry.ok()) return entry.status();
    PEAKKNN_ASSIGN_OR_RETURN(v1::ClusterMember member,
                             DecodeMember(key, entry->value));
    members.push_back(std::move(member));
  }
  std::sort(members.begin(), members.end(),
            [](const v1::ClusterMember& a, const v1::ClusterMember& b) {
              if (a.shard() != b.shard()) return a.shard() < b.shard();
              return a.replica() < b.replica();
            });
  return members;
}

}  // namespace peakknn
