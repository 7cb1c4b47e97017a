#include "router/replica_core.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "base/string_view.h"

namespace peakknn {
namespace {

// A local collection with its writes refused.
class ReadOnlyCollection final : public ServedCollection {
 public:
  ReadOnlyCollection(std::shared_ptr<ServedCollection> local,
                     const ReplicaCore* core)
      : local_(std::move(local)), core_(core) {}

  const CollectionSchema& schema() const override { return local_->schema(); }
  // A replica serves what it has applied; the router asks for more with
  // AwaitApplied (min_applied_sequence) before it searches.
  absl::StatusOr<SearchResults> Search(
      std::span<const float> queries, const SearchParams& params,
      const ReadConsistency& consistency) const override {
    return local_->Search(queries, params, consistency);
  }
  absl::Status AwaitApplied(uint64_t stream_sequence,
                            absl::Time deadline) const override;
  void WriteAsync(WriteMode, std::span<const uint64_t>, std::span<const float>,
                  const WriteOptions&, WriteCallback done,
                  std::shared_ptr<const void>) override {
    done(ReplicaWriteError());
  }
  void DeleteAsync(std::span<const uint64_t>, const WriteOptions&,
                   WriteCallback done) override {
    done(ReplicaWriteError());
  }
  absl::StatusOr<std::vector<std::optional<std::vector<float>>>> Get(
      std::span<const uint64_t> ids,
      const ReadConsistency& consistency) const override {
    return local_->Get(ids, consistency);
  }
  RowCounts row_counts() const override { return local_->row_counts(); }

 private:
  const std::shared_ptr<ServedCollection> local_;
  const ReplicaCore* const core_;  // outlives its handles' use
};

// How often AwaitApplied looks again: a replica applies a fetched run of
// messages in about a millisecond per batch on loopback, so a 1 ms poll
// adds little to a read that waits, and nothing to one that does not.
constexpr absl::Duration kAppliedPoll = absl::Milliseconds(1);

absl::Status ReadOnlyCollection::AwaitApplied(uint64_t stream_sequence,
                                              absl::Time deadline) const {
  if (stream_sequence == 0) return absl::OkStatus();
  std::optional<uint64_t> applied = core_->AppliedSequence(schema().name);
  if (!applied.has_value()) {
    return absl::UnavailableError(
        "this replica has not joined its cluster yet");
  }
  while (*applied < stream_sequence) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "collection ", schema().name,
          ": this replica has applied its "
          "shard's stream up to sequence ",
          *applied, ", not yet ", stream_sequence, " (min_applied_sequence)"));
    }
    absl::SleepFor(kAppliedPoll);
    applied = core_->AppliedSequence(schema().name);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReplicaWriteError() {
  return absl::FailedPreconditionError(
      "this server is a shard replica: write through the router");
}

absl::Status ReplicaCore::CreateCollection(const CollectionSchema&,
                                           Durability) {
  return ReplicaWriteError();
}

absl::Status ReplicaCore::DropCollection(std::string_view) {
  return ReplicaWriteError();
}

absl::StatusOr<std::shared_ptr<ServedCollection>> ReplicaCore::OpenCollection(
    std::string_view name) const {
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<ServedCollection> local,
                           local_->OpenCollection(name));
  std::lock_guard lock(mu_);
  Wrapped& wrapped = wrapped_[AV(name)];
  std::shared_ptr<ServedCollection> wrapper = wrapped.wrapper.lock();
  if (wrapper == nullptr || wrapped.local != local.get()) {
    wrapped.local = local.get();
    wrapper = std::make_shared<ReadOnlyCollection>(std::move(local), this);
    wrapped.wrapper = wrapper;
  }
  return wrapper;
}

void ReplicaCore::SetAppliedSequence(AppliedSequenceFn applied) {
  std::lock_guard lock(applied_mu_);
  applied_ = std::move(applied);
}

std::optional<uint64_t> ReplicaCore::AppliedSequence(
    const std::string& collection) const {
  std::lock_guard lock(applied_mu_);
  if (applied_ == nullptr) return std::nullopt;
  return applied_(collection);
}

}  // namespace peakknn
