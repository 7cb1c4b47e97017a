#include "router/shard_replica.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "router/cluster_layout.h"
#include "router/shard_hash.h"
#include "server/convert.h"

namespace peakknn {

// Reconcile and heartbeat failures repeat every poll while NATS is away:
// logged once per this, with a count.
constexpr absl::Duration kPollLogInterval = absl::Seconds(30);

absl::StatusOr<std::unique_ptr<ShardReplica>> ShardReplica::Start(
    nats::NatsConnection& conn, ClusterMetadata& metadata, ServiceCore& local,
    const ShardReplicaOptions& options) {
  if (options.shard < 0 || options.shard >= kMaxShards) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shard ", options.shard, " is not in [0, ", kMaxShards, ")"));
  }
  if (!IsNameToken(options.replica)) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica name \"", options.replica,
                     "\" is not 1+ characters of [A-Za-z0-9_-]"));
  }
  if (options.state_dir.empty()) {
    return absl::InvalidArgumentError(
        "a shard replica needs a state directory");
  }
  Env* env = options.env != nullptr ? options.env : Env::Default();
  std::unique_ptr<ShardReplica> replica(
      new ShardReplica(conn, metadata, local, options, env));
  PEAKKNN_RETURN_IF_ERROR(replica->positions_.Init());
  replica->Poll();
  replica->poll_ = std::make_unique<PeriodicTask>(
      options.poll_interval, [r = replica.get()] { r->Poll(); });
  return replica;
}

ShardReplica::ShardReplica(nats::NatsConnection& conn,
                           ClusterMetadata& metadata, ServiceCore& local,
                           const ShardReplicaOptions& options, Env* env)
    : conn_(conn),
      metadata_(metadata),
      local_(local),
      options_(options),
      log_(LogOrStderr(options.log)),
      poll_log_(kPollLogInterval, log_),
      positions_(env, options.state_dir) {}

ShardReplica::~ShardReplica() { Stop(); }

void ShardReplica::Stop() {
  if (poll_ != nullptr) poll_->Stop();
  std::map<std::string, std::unique_ptr<CollectionApplier>> appliers;
  {
    std::lock_guard lock(mu_);
    appliers.swap(appliers_);
  }
  // Outside mu_: each waits for its step in progress.
  appliers.clear();
}

std::vector<ReplicaCollection> ShardReplica::Collections() const {
  std::lock_guard lock(mu_);
  std::vector<ReplicaCollection> collections;
  for (const auto& [name, applier] : appliers_) {
    collections.push_back({.name = name,
                           .creation_revision = applier->creation_revision(),
                           .progress = applier->progress()});
  }
  return collections;
}

uint64_t ShardReplica::AppliedSequence(const std::string& collection) const {
  std::lock_guard lock(mu_);
  const auto it = appliers_.find(collection);
  return it == appliers_.end() ? 0 : it->second->progress().applied_sequence;
}

void ShardReplica::Poll() {
  if (absl::Status s = Reconcile(); !s.ok()) {
    poll_log_.Log(absl::StrCat(
        "shard ", options_.shard, " replica ", options_.replica,
        ": reconcile failed (retried in ",
        absl::FormatDuration(options_.poll_interval), "): ", s.ToString()));
  }
  if (absl::Status s = Heartbeat(); !s.ok()) {
    poll_log_.Log(absl::StrCat("shard ", options_.shard, " replica ",
                               options_.replica,
                               ": heartbeat failed: ", s.ToString()));
  }
}

absl::Status ShardReplica::Reconcile() {
  PEAKKNN_ASSIGN_OR_RETURN(const std::vector<CollectionRecord> records,
                           metadata_.ListCollections());
  // The collections this shard holds a part of, by name.
  std::map<std::string, const CollectionRecord*> wanted;
  for (const CollectionRecord& record : records) {
    if (static_cast<uint32_t>(options_.shard) <
        record.collection.shard_count()) {
      wanted[record.collection.schema().name()] = &record;
    }
  }
  // Gone from the metadata, or another incarnation: applier and local data.
  std::set<std::string> stale;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, applier] : appliers_) {
      auto it = wanted.find(name);
      if (it == wanted.end() ||
          it->second->creation_revision != applier->creation_revision()) {
        stale.insert(name);
      }
    }
  }
  // Local collections left from before a restart that the metadata dropped
  // meanwhile.
  PEAKKNN_ASSIGN_OR_RETURN(const std::vector<CollectionInfo> local,
                           local_.ListCollections());
  for (const CollectionInfo& info : local) {
    if (!wanted.contains(info.schema.name)) stale.insert(info.schema.name);
  }
  absl::Status first_error;
  for (const std::string& name : stale) {
    log_(absl::StrCat("shard ", options_.shard, " replica ", options_.replica,
                      ": dropping collection ", name,
                      " (gone from the cluster metadata, or created again)"));
    first_error.Update(Remove(name));
  }
  for (const auto& [name, record] : wanted) {
    bool running;
    {
      std::lock_guard lock(mu_);
      running = appliers_.contains(name);
    }
    if (!running) first_error.Update(Add(*record));
  }
  return first_error;
}

absl::Status ShardReplica::Add(const CollectionRecord& record) {
  const std::string& name = record.collection.schema().name();
  PEAKKNN_ASSIGN_OR_RETURN(
      const CollectionSchema schema,
      server::SchemaFromProto(record.collection.schema(),
                              CollectionSchema{}.default_recall_target));
  PEAKKNN_ASSIGN_OR_RETURN(const std::optional<AppliedPosition> position,
                           positions_.Read(name));
  const absl::StatusOr<CollectionInfo> existing =
      local_.DescribeCollection(name);
  if (!existing.ok() &&
      existing.status().code() != absl::StatusCode::kNotFound) {
    return existing.status();
  }
  uint64_t applied = 0;
  if (existing.ok() && position.has_value() &&
      position->creation_revision == record.creation_revision) {
    applied = position->sequence;
  } else {
    // No trustworthy position for this incarnation: start from scratch.
    PEAKKNN_RETURN_IF_ERROR(Remove(name));
    // The replica applies with fsync durability whatever the collection's
    // default (collection_applier.h), so the default is moot here.
    PEAKKNN_RETURN_IF_ERROR(
        local_.CreateCollection(schema, Durability::kFsync));
    PEAKKNN_RETURN_IF_ERROR(positions_.Write(
        name, {.creation_revision = record.creation_revision, .sequence = 0}));
  }
  log_(absl::StrCat("shard ", options_.shard, " replica ", options_.replica,
                    ": applying collection ", name, " (revision ",
                    record.creation_revision, ") from stream sequence ",
                    applied + 1));
  auto applier = std::make_unique<CollectionApplier>(
      conn_, local_, positions_,
      ApplierConfig{.shard = options_.shard,
                    .replica = options_.replica,
                    .schema = schema,
                    .creation_revision = record.creation_revision,
                    .max_fetch = options_.max_fetch,
                    .fetch_wait = options_.fetch_wait,
                    .retry_interval = options_.retry_interval,
                    .log = log_},
      applied);
  std::lock_guard lock(mu_);
  appliers_[name] = std::move(applier);
  return absl::OkStatus();
}

absl::Status ShardReplica::Remove(const std::string& name) {
  std::unique_ptr<CollectionApplier> applier;
  {
    std::lock_guard lock(mu_);
    if (auto it = appliers_.find(name); it != appliers_.end()) {
      applier = std::move(it->second);
      appliers_.erase(it);
    }
  }
  if (applier != nullptr) applier->Stop();
  PEAKKNN_RETURN_IF_ERROR(positions_.Delete(name));
  absl::Status dropped = local_.DropCollection(name);
  if (dropped.code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  return dropped;
}

absl::Status ShardReplica::Heartbeat() {
  v1::ClusterMember member;
  member.set_shard(options_.shard);
  member.set_replica(options_.replica);
  member.set_address(options_.address);
  for (const ReplicaCollection& c : Collections()) {
    (*member.mutable_applied_sequence())[c.name] = c.progress.applied_sequence;
    if (absl::StatusOr<CollectionInfo> info = local_.DescribeCollection(c.name);
        info.ok()) {
      (*member.mutable_live_rows())[c.name] = info->live_rows;
    }
  }
  member.set_heartbeat_unix_ms(absl::ToUnixMillis(absl::Now()));
  return metadata_.Heartbeat(member);
}

}  // namespace peakknn
