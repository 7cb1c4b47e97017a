// Applies one collection's shard write stream to its local copy, on a
// thread of its own: the core of a shard replica (shard_replica.h runs one
// per collection).
//
// Each step fetches up to max_fetch consecutive messages (PullConsumer),
// decodes them (shard_write_batch.h), submits them in sequence order to
// the local collection as fsync-durable writes, waits for all of their
// acknowledgements, records the last sequence in the AppliedPositions file
// (never ahead of what is durable locally), then acks them to JetStream.
//
// Idempotent replay: a crash after the local writes and before the position
// file leaves batches that are applied but not recorded; on restart they
// are applied again. Inserts are therefore applied as upserts (the router
// has already decided that the ids are new; a replica refusing its own
// replay with ALREADY_EXISTS would stop for good), and deletes of absent
// ids do nothing. Re-applying a run of batches in order after they were
// applied once leaves every row as it was: each id ends with the value of
// its last write in the run, whatever it held before. Only slot counts
// (CollectionInfo::rows) can differ; searches and Get cannot.
//
// Errors: DATA_LOSS (a message that does not decode or fit the schema),
// OUT_OF_RANGE (the next sequence has aged out of the stream), and
// FAILED_PRECONDITION / INVALID_ARGUMENT halt the applier for good: retrying
// cannot help, and skipping would lose writes silently. Anything else (NATS
// unavailable, the stream not created yet, a full disk) is retried every
// retry_interval from the last recorded position. progress() reports it.
//
// Thread-safety: progress() may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/periodic_task.h"
#include "engine/schema.h"
#include "router/applied_position.h"
#include "router/nats/connection.h"
#include "router/nats/pull_consumer.h"
#include "store/service_core.h"
#include "store/store_log.h"

namespace peakknn {

struct ApplierConfig {
  int shard = 0;
  std::string replica;  // names its durable consumer
  CollectionSchema schema;
  uint64_t creation_revision = 0;
  int max_fetch = 256;  // messages per step
  // How long one fetch waits for the first message; also bounds how long
  // Stop waits for the step in progress.
  absl::Duration fetch_wait = absl::Milliseconds(500);
  absl::Duration retry_interval = absl::Seconds(1);
  LogFunction log;  // must be set
};

struct ApplierProgress {
  uint64_t applied_sequence = 0;  // last stream sequence durable locally
  // OK while applying; the last error otherwise (retried unless halted).
  absl::Status status;
  bool halted = false;  // stopped for good on `status`
};

class CollectionApplier {
 public:
  // Starts applying at stream sequence applied_sequence + 1. `conn`,
  // `local` and `positions` must outlive the applier; the local collection
  // must exist.
  CollectionApplier(nats::NatsConnection& conn, ServiceCore& local,
                    AppliedPositions& positions, ApplierConfig config,
                    uint64_t applied_sequence);
  // Stops (see Stop).
  ~CollectionApplier();
  CollectionApplier(const CollectionApplier&) = delete;
  CollectionApplier& operator=(const CollectionApplier&) = delete;

  // Waits for the step in progress (at most about fetch_wait plus the local
  // writes) and stops. Idempotent.
  void Stop();

  ApplierProgress progress() const;
  uint64_t creation_revision() const { return config_.creation_revision; }

 private:
  // One run of the thread: a step, and its error recorded.
  void Run();
  // Opens the consumer if needed, fetches, applies, records, acks.
  absl::Status Step();
  // How many of the fetched messages (a prefix) are durable locally, and
  // why the rest are not.
  struct AppliedPrefix {
    size_t count = 0;
    absl::Status error;
  };
  // Submits the messages in order up to the first that does not decode,
  // and waits until they are all durable in the local collection.
  AppliedPrefix Apply(const std::vector<nats::ConsumedMessage>& messages);
  absl::Status OpenConsumer();

  nats::NatsConnection& conn_;
  ServiceCore& local_;
  AppliedPositions& positions_;
  const ApplierConfig config_;
  const std::string stream_;
  const std::string subject_;

  // Used by the applier's thread only.
  std::unique_ptr<nats::PullConsumer> consumer_;
  std::shared_ptr<ServedCollection> collection_;
  absl::Time retry_after_ = absl::InfinitePast();

  // Retried errors (NATS down, the stream not created yet) repeat every
  // retry_interval: logged once per interval of this, with a count.
  LogThrottle retry_log_;

  mutable std::mutex mu_;
  ApplierProgress progress_ ABSL_GUARDED_BY(mu_);

  // Last: started once everything above is initialised.
  std::unique_ptr<PeriodicTask> task_;
};

}  // namespace peakknn
