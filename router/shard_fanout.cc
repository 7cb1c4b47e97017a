#include "router/shard_fanout.h"

#include <condition_variable>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace peakknn {
namespace {

bool AnotherReplicaMayAnswer(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

// The fan-out's state, shared with gRPC's callbacks; lives until the last
// callback has run (the waiting thread holds it too).
class FanOutCall : public std::enable_shared_from_this<FanOutCall> {
 public:
  FanOutCall(ShardChannels& channels, const std::vector<ShardTargets>& targets,
             const StartShardCall& start, const FanOutOptions& options)
      : channels_(channels),
        targets_(targets),
        start_(start),
        options_(options),
        shards_(targets.size()),
        pending_(static_cast<int>(targets.size())) {}

  absl::Status Run() {
    for (size_t s = 0; s < shards_.size(); ++s) Attempt(static_cast<int>(s));
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return pending_ == 0; });
    return result_;
  }

 private:
  struct Shard {
    size_t next = 0;  // the next target to try
    std::unique_ptr<grpc::ClientContext> context;
    std::string errors;  // of the replicas tried, for the final message
  };

  // Tries the shard's next replica, or ends the shard with UNAVAILABLE.
  void Attempt(int slot) {
    Shard& state = shards_[slot];
    const int shard = targets_[slot].shard;
    const std::vector<ShardTarget>& targets = targets_[slot].replicas;
    if (state.next >= targets.size()) {
      Finish(absl::UnavailableError(absl::StrCat(
          "shard ", shard, ": no replica answered",
          targets.empty() ? " (no live replica holds the collection: none "
                            "has heartbeated in the last member TTL, or "
                            "those alive have not created it yet)"
                          : absl::StrCat(" (", state.errors, ")"))));
      return;
    }
    const ShardTarget& target = targets[state.next++];
    state.context =
        channels_.NewContext(absl::Now() + options_.attempt_timeout);
    start_(*channels_.Stub(target.address), state.context.get(), slot,
           [self = shared_from_this(), slot, &target](grpc::Status status) {
             self->Done(slot, target, status);
           });
  }

  void Done(int slot, const ShardTarget& target, const grpc::Status& status) {
    if (status.ok()) {
      Finish(absl::OkStatus());
      return;
    }
    const std::string error =
        absl::StrCat("replica ", target.replica, " at ", target.address, ": ",
                     absl::StatusCodeToString(
                         static_cast<absl::StatusCode>(status.error_code())),
                     ": ", status.error_message());
    if (AnotherReplicaMayAnswer(status.error_code())) {
      Shard& state = shards_[slot];
      if (!state.errors.empty()) state.errors += "; ";
      state.errors += error;
      Attempt(slot);
      return;
    }
    Finish(absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("shard ", targets_[slot].shard, ": ", error)));
  }

  void Finish(const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (result_.ok() && !status.ok()) result_ = status;
    if (--pending_ == 0) cv_.notify_all();
  }

  ShardChannels& channels_;
  const std::vector<ShardTargets>& targets_;
  const StartShardCall& start_;
  const FanOutOptions options_;
  // Slot s's entry is touched only by its own chain of attempts (one at a
  // time), so it needs no lock.
  std::vector<Shard> shards_;

  std::mutex mu_;
  std::condition_variable cv_;
  int pending_;  // shards not finished; guarded by mu_
  absl::Status result_;
};

}  // namespace

absl::Status FanOut(ShardChannels& channels,
                    const std::vector<ShardTargets>& targets,
                    const StartShardCall& start, const FanOutOptions& options) {
  if (targets.empty()) return absl::OkStatus();
  return std::make_shared<FanOutCall>(channels, targets, start, options)->Run();
}

}  // namespace peakknn
