#include "tests/fake_core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/string_view.h"
#include "engine/vector_checks.h"

namespace peakknn::testing {
namespace {

absl::Status NotFound(std::string_view name) {
  return absl::NotFoundError(
      absl::StrCat("fake core: collection '", AV(name), "' does not exist"));
}

}  // namespace

// ---- FakeCollection

FakeCollection::FakeCollection(FakeCore* core,
                               std::unique_ptr<Collection> collection)
    : core_(core), collection_(std::move(collection)) {}

const CollectionSchema& FakeCollection::schema() const {
  return collection_->schema();
}

absl::StatusOr<SearchResults> FakeCollection::Search(
    std::span<const float> queries, const SearchParams& params,
    const ReadConsistency& /*consistency*/) const {
  PEAKKNN_RETURN_IF_ERROR(core_->Enter(CoreCall::kSearch));
  searches_.fetch_add(1);
  return collection_->SearchChecked(queries, params);
}

absl::StatusOr<WriteAck> FakeCollection::Acknowledge(
    const std::function<absl::StatusOr<int64_t>()>& apply,
    Durability durability) {
  PEAKKNN_ASSIGN_OR_RETURN(const int64_t rows, apply());
  WriteAck ack;
  ack.sequence = sequence_.fetch_add(1) + 1;
  ack.durability =
      durability == Durability::kDefault ? Durability::kFsync : durability;
  ack.rows = rows;
  return ack;
}

void FakeCollection::WriteAsync(WriteMode mode, std::span<const uint64_t> ids,
                                std::span<const float> vectors,
                                const WriteOptions& options, WriteCallback done,
                                std::shared_ptr<const void> owner) {
  if (absl::Status s = core_->Enter(CoreCall::kWrite); !s.ok()) {
    core_->Enqueue(
        {[s] { return absl::StatusOr<WriteAck>(s); }, std::move(done)});
    return;
  }
  if (dropped_.load()) {
    done(NotFound(schema().name));
    return;
  }
  // As the store does: ids are copied, vectors read in place when an owner
  // keeps them alive until `done` has run.
  std::vector<float> copied;
  if (owner == nullptr) copied.assign(vectors.begin(), vectors.end());
  core_->Enqueue(
      {[this, mode, ids = std::vector<uint64_t>(ids.begin(), ids.end()),
        vectors, copied = std::move(copied), owner = std::move(owner),
        durability = options.durability]() {
         return Acknowledge(
             [&]() -> absl::StatusOr<int64_t> {
               const std::span<const float> rows =
                   copied.empty() ? vectors : std::span<const float>(copied);
               PEAKKNN_RETURN_IF_ERROR(collection_->Write(mode, ids, rows));
               return static_cast<int64_t>(ids.size());
             },
             durability);
       },
       std::move(done)});
}

void FakeCollection::DeleteAsync(std::span<const uint64_t> ids,
                                 const WriteOptions& options,
                                 WriteCallback done) {
  if (absl::Status s = core_->Enter(CoreCall::kDelete); !s.ok()) {
    core_->Enqueue(
        {[s] { return absl::StatusOr<WriteAck>(s); }, std::move(done)});
    return;
  }
  if (dropped_.load()) {
    done(NotFound(schema().name));
    return;
  }
  core_->Enqueue({[this, ids = std::vector<uint64_t>(ids.begin(), ids.end()),
                   durability = options.durability]() {
                    return Acknowledge(
                        [&]() -> absl::StatusOr<int64_t> {
                          return collection_->Delete(ids);
                        },
                        durability);
                  },
                  std::move(done)});
}

absl::StatusOr<std::vector<std::optional<std::vector<float>>>>
FakeCollection::Get(std::span<const uint64_t> ids,
                    const ReadConsistency& /*consistency*/) const {
  PEAKKNN_RETURN_IF_ERROR(core_->Enter(CoreCall::kGet));
  return collection_->Get(ids);
}

RowCounts FakeCollection::row_counts() const {
  const std::shared_ptr<const Snapshot> snapshot = collection_->snapshot();
  return {snapshot->rows, snapshot->live_rows};
}

CollectionInfo FakeCollection::Describe() const {
  const CollectionStats stats = collection_->Stats();
  CollectionInfo info;
  info.schema = schema();
  info.rows = stats.rows;
  info.live_rows = stats.live_rows;
  info.memory_bytes = stats.memory_bytes;
  info.applied_sequence = sequence_.load();
  info.durable_sequence = info.applied_sequence;
  return info;
}

// ---- FakeCore

FakeCore::FakeCore()
    : ready_(absl::UnavailableError("fake core: not ready yet")),
      ack_thread_([this] { AckLoop(); }) {}

FakeCore::~FakeCore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    holding_ = false;
    stopping_ = true;
  }
  cv_.notify_all();
  ack_thread_.join();
}

void FakeCore::SetReady(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  ready_ = std::move(status);
}

void FakeCore::FailNext(CoreCall call, absl::Status status, int times) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < times; ++i) {
    failures_[static_cast<int>(call)].push_back(status);
  }
}

void FakeCore::HoldAcks() {
  std::lock_guard<std::mutex> lock(mu_);
  holding_ = true;
}

void FakeCore::ReleaseAcks(AckOrder order) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (order == AckOrder::kNewestFirst) {
      std::reverse(pending_.begin(), pending_.end());
    }
    holding_ = false;
  }
  cv_.notify_all();
}

int64_t FakeCore::pending_acks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(pending_.size()) + (acking_ ? 1 : 0);
}

bool FakeCore::AwaitPendingAcks(int64_t n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(
      lock, absl::ToChronoTime(absl::Now() + timeout),
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return static_cast<int64_t>(pending_.size()) + (acking_ ? 1 : 0) >= n;
      });
}

void FakeCore::SetStats(const CoreStats& stats) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = stats;
}

int64_t FakeCore::calls(CoreCall call) const {
  return calls_[static_cast<int>(call)].load();
}

std::shared_ptr<FakeCollection> FakeCore::Find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = collections_.find(AV(name));
  return it == collections_.end() ? nullptr : it->second;
}

absl::Status FakeCore::Enter(CoreCall call) const {
  calls_[static_cast<int>(call)].fetch_add(1);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(static_cast<int>(call));
  if (it == failures_.end() || it->second.empty()) return absl::OkStatus();
  absl::Status status = std::move(it->second.front());
  it->second.pop_front();
  return status;
}

void FakeCore::Enqueue(PendingWrite write) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(write));
  }
  cv_.notify_all();
}

void FakeCore::AckLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return (!holding_ && !pending_.empty()) ||
             (stopping_ && pending_.empty());
    });
    if (pending_.empty()) return;  // stopping, every write acknowledged
    PendingWrite write = std::move(pending_.front());
    pending_.pop_front();
    acking_ = true;
    lock.unlock();
    write.done(write.apply());
    lock.lock();
    acking_ = false;
    cv_.notify_all();  // AwaitPendingAcks
  }
}

absl::Status FakeCore::Ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_;
}

absl::Status FakeCore::CreateCollection(const CollectionSchema& schema,
                                        Durability) {
  PEAKKNN_RETURN_IF_ERROR(Enter(CoreCall::kCreate));
  PEAKKNN_RETURN_IF_ERROR(ValidateSchema(schema));
  PEAKKNN_ASSIGN_OR_RETURN(std::unique_ptr<Collection> collection,
                           Collection::Create(schema));
  std::lock_guard<std::mutex> lock(mu_);
  if (collections_.contains(schema.name)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "fake core: collection '", schema.name, "' already exists"));
  }
  collections_[schema.name] =
      std::make_shared<FakeCollection>(this, std::move(collection));
  return absl::OkStatus();
}

absl::Status FakeCore::DropCollection(std::string_view name) {
  PEAKKNN_RETURN_IF_ERROR(Enter(CoreCall::kDrop));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = collections_.find(AV(name));
  if (it == collections_.end()) return NotFound(name);
  it->second->MarkDropped();
  collections_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CollectionInfo>> FakeCore::ListCollections() const {
  PEAKKNN_RETURN_IF_ERROR(Enter(CoreCall::kList));
  std::vector<CollectionInfo> infos;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, c] : collections_) infos.push_back(c->Describe());
  }
  std::sort(infos.begin(), infos.end(),
            [](const CollectionInfo& a, const CollectionInfo& b) {
              return a.schema.name < b.schema.name;
            });
  return infos;
}

absl::StatusOr<CollectionInfo> FakeCore::DescribeCollection(
    std::string_view name) const {
  PEAKKNN_RETURN_IF_ERROR(Enter(CoreCall::kDescribe));
  std::shared_ptr<FakeCollection> c = Find(name);
  if (c == nullptr) return NotFound(name);
  return c->Describe();
}

absl::StatusOr<std::shared_ptr<ServedCollection>> FakeCore::OpenCollection(
    std::string_view name) const {
  PEAKKNN_RETURN_IF_ERROR(Enter(CoreCall::kOpen));
  std::shared_ptr<FakeCollection> c = Find(name);
  if (c == nullptr) return NotFound(name);
  return c;
}

CoreStats FakeCore::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace peakknn::testing
