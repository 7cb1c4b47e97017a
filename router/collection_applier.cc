#include "router/collection_applier.h"

#include <condition_variable>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/string_view.h"
#include "peakknn/v1/cluster.pb.h"
#include "router/cluster_layout.h"
#include "router/shard_write_batch.h"
#include "server/convert.h"

namespace peakknn {
namespace {

using server::SpanOf;

// How often the thread looks again after a step: short, since a step that
// found nothing has already waited fetch_wait inside Fetch.
constexpr absl::Duration kStepInterval = absl::Milliseconds(2);
constexpr absl::Duration kRetryLogInterval = absl::Seconds(30);

// Waits for a group of asynchronous writes; keeps the first error.
class PendingWrites {
 public:
  WriteCallback Add() {
    std::lock_guard lock(mu_);
    ++pending_;
    return [this](absl::StatusOr<WriteAck> ack) {
      std::lock_guard done(mu_);
      if (!ack.ok() && first_error_.ok()) first_error_ = ack.status();
      --pending_;
      cv_.notify_all();  // under mu_: Wait's caller may destroy *this
    };
  }

  absl::Status Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return pending_ == 0;
    });
    return first_error_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

bool Halts(absl::StatusCode code) {
  return code == absl::StatusCode::kDataLoss ||
         code == absl::StatusCode::kOutOfRange ||
         code == absl::StatusCode::kFailedPrecondition ||
         code == absl::StatusCode::kInvalidArgument;
}

}  // namespace

CollectionApplier::CollectionApplier(nats::NatsConnection& conn,
                                     ServiceCore& local,
                                     AppliedPositions& positions,
                                     ApplierConfig config,
                                     uint64_t applied_sequence)
    : conn_(conn),
      local_(local),
      positions_(positions),
      config_(std::move(config)),
      stream_(ShardStreamName(config_.schema.name, config_.shard)),
      subject_(ShardSubject(config_.schema.name, config_.shard)),
      retry_log_(kRetryLogInterval, config_.log) {
  progress_.applied_sequence = applied_sequence;
  task_ = std::make_unique<PeriodicTask>(kStepInterval, [this] { Run(); });
}

CollectionApplier::~CollectionApplier() { Stop(); }

void CollectionApplier::Stop() { task_->Stop(); }

ApplierProgress CollectionApplier::progress() const {
  std::lock_guard lock(mu_);
  return progress_;
}

void CollectionApplier::Run() {
  {
    std::lock_guard lock(mu_);
    if (progress_.halted) return;
  }
  if (absl::Now() < retry_after_) return;
  absl::Status status = Step();
  if (status.ok()) {
    std::lock_guard lock(mu_);
    progress_.status = absl::OkStatus();
    return;
  }
  // Start again from the recorded position: a consumer left mid-way may
  // have fetched messages this step did not apply.
  consumer_.reset();
  retry_after_ = absl::Now() + config_.retry_interval;
  if (status.code() == absl::StatusCode::kOutOfRange) {
    // From Open or Fetch: the PullConsumer's message says which sequences
    // the stream still holds.
    status = absl::OutOfRangeError(
        absl::StrCat("collection ", config_.schema.name, " shard ",
                     config_.shard, " replica ", config_.replica,
                     " cannot catch up from its stream: ", status.message(),
                     "; bootstrap from a peer's checkpoint is not built yet"));
  }
  const bool halted = Halts(status.code());
  const std::string line = absl::StrCat(
      "collection ", config_.schema.name, " shard ", config_.shard, " replica ",
      config_.replica,
      halted ? ": stopped applying: " : ": will retry: ", status.ToString());
  if (halted) {
    config_.log(line);
  } else {
    retry_log_.Log(line);
  }
  std::lock_guard lock(mu_);
  progress_.status = std::move(status);
  progress_.halted = halted;
}

absl::Status CollectionApplier::OpenConsumer() {
  PEAKKNN_ASSIGN_OR_RETURN(
      consumer_,
      nats::PullConsumer::Open(
          conn_,
          {.stream = stream_, .subject = subject_, .durable = config_.replica},
          progress().applied_sequence + 1));
  return absl::OkStatus();
}

absl::Status CollectionApplier::Step() {
  if (collection_ == nullptr) {
    PEAKKNN_ASSIGN_OR_RETURN(collection_,
                             local_.OpenCollection(config_.schema.name));
  }
  if (consumer_ == nullptr) PEAKKNN_RETURN_IF_ERROR(OpenConsumer());
  PEAKKNN_ASSIGN_OR_RETURN(
      std::vector<nats::ConsumedMessage> messages,
      consumer_->Fetch(config_.max_fetch, config_.fetch_wait));
  const AppliedPrefix applied = Apply(messages);
  if (applied.count > 0) {
    const std::span<const nats::ConsumedMessage> done(messages.data(),
                                                      applied.count);
    const uint64_t last = done.back().sequence();
    PEAKKNN_RETURN_IF_ERROR(positions_.Write(
        config_.schema.name,
        {.creation_revision = config_.creation_revision, .sequence = last}));
    {
      std::lock_guard lock(mu_);
      progress_.applied_sequence = last;
    }
    // After the position is recorded: the server's ack floor is only a
    // hint here (Open positions at the recorded sequence), so a lost ack
    // costs nothing but a redelivery the consumer drops.
    PEAKKNN_RETURN_IF_ERROR(consumer_->Ack(done));
  }
  return applied.error;
}

CollectionApplier::AppliedPrefix CollectionApplier::Apply(
    const std::vector<nats::ConsumedMessage>& messages) {
  // fsync durability whatever the collection's default: the position file
  // written next must never be ahead of what survives a crash.
  const WriteOptions fsync{.durability = Durability::kFsync};
  PendingWrites pending;
  AppliedPrefix applied;
  for (const nats::ConsumedMessage& message : messages) {
    absl::StatusOr<v1::ShardWriteBatch> decoded = DecodeShardWriteBatch(
        message.data(), config_.schema, stream_, message.sequence());
    if (!decoded.ok()) {
      applied.error = decoded.status();
      break;
    }
    ++applied.count;
    if (decoded->ids().empty()) continue;
    // The batch owns the ids and vectors the write reads in place.
    auto batch = std::make_shared<v1::ShardWriteBatch>(*std::move(decoded));
    if (batch->mode() == v1::ShardWriteBatch::MODE_DELETE) {
      collection_->DeleteAsync(SpanOf(batch->ids()), fsync, pending.Add());
    } else {
      // Inserts as upserts: see the header (idempotent replay).
      collection_->WriteAsync(WriteMode::kUpsert, SpanOf(batch->ids()),
                              SpanOf(batch->vectors()), fsync, pending.Add(),
                              batch);
    }
  }
  // Which of the batches failed is not known: record none of them.
  if (absl::Status write_error = pending.Wait(); !write_error.ok()) {
    return {
        .count = 0,
        .error = absl::Status(
            write_error.code(),
            absl::StrCat("applying stream ", stream_, " sequences ",
                         messages.front().sequence(), "-",
                         messages.back().sequence(),
                         " to the local collection: ", write_error.message()))};
  }
  return applied;
}

}  // namespace peakknn
