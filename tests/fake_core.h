// An in-memory ServiceCore for service tests (TF Serving's MockServerCore
// idea): each collection is an engine Collection (no disk, no log), and the
// test steers the core: Ready()'s answer, errors for the next calls,
// acknowledgements held until released, the stats it reports, and a count
// of every call.
//
// Writes are acknowledged on the core's own ack thread, in the order they
// were handed in, as the store acknowledges a collection's writes on its
// commit thread. A write is applied when it is acknowledged, so it becomes
// visible with its ack (ack.sequence counts the collection's applied
// writes). A write refused at once (dropped collection) calls back on the
// caller's thread. Unlike the store, the calls other than Ready() do not
// check readiness: a service that forgets to ask Ready() is seen.
//
// Thread-safe. The core must outlive its handles and every write callback:
// release held acks before destroying what the callbacks touch.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "engine/collection.h"
#include "store/service_core.h"

namespace peakknn::testing {

// The calls a test can count and make fail.
enum class CoreCall {
  kCreate,
  kDrop,
  kList,
  kDescribe,
  kOpen,
  kSearch,
  kWrite,  // WriteAsync (insert or upsert)
  kDelete,
  kGet,
};
inline constexpr int kNumCoreCalls = 9;

class FakeCore;

// One collection of a FakeCore.
class FakeCollection final : public ServedCollection {
 public:
  FakeCollection(FakeCore* core, std::unique_ptr<Collection> collection);

  const CollectionSchema& schema() const override;
  absl::StatusOr<SearchResults> Search(
      std::span<const float> queries, const SearchParams& params,
      const ReadConsistency& consistency) const override;
  void WriteAsync(WriteMode mode, std::span<const uint64_t> ids,
                  std::span<const float> vectors, const WriteOptions& options,
                  WriteCallback done,
                  std::shared_ptr<const void> owner = nullptr) override;
  void DeleteAsync(std::span<const uint64_t> ids, const WriteOptions& options,
                   WriteCallback done) override;
  absl::StatusOr<std::vector<std::optional<std::vector<float>>>> Get(
      std::span<const uint64_t> ids,
      const ReadConsistency& consistency) const override;
  RowCounts row_counts() const override;

  // Searches of this handle (each batch the service searched).
  int64_t searches() const { return searches_.load(); }
  CollectionInfo Describe() const;
  // Later writes are refused with NOT_FOUND; searches see the last state.
  void MarkDropped() { dropped_.store(true); }

 private:
  // Applies one write when it is acknowledged, as `ack` or its error.
  absl::StatusOr<WriteAck> Acknowledge(
      const std::function<absl::StatusOr<int64_t>()>& apply,
      Durability durability);

  FakeCore* const core_;
  const std::unique_ptr<Collection> collection_;
  mutable std::atomic<int64_t> searches_{0};
  std::atomic<bool> dropped_{false};
  std::atomic<uint64_t> sequence_{0};  // applied writes
};

class FakeCore final : public ServiceCore {
 public:
  enum class AckOrder { kInOrder, kNewestFirst };

  FakeCore();
  // Releases held acks (their callbacks run) and stops the ack thread.
  ~FakeCore() override;

  // ---- Steering.

  // What Ready() answers; at first UNAVAILABLE "fake core: not ready yet".
  void SetReady(absl::Status status);
  // The next `times` calls of `call` fail with `status`: a write through
  // its ack (held like any other), every other call at once.
  void FailNext(CoreCall call, absl::Status status, int times = 1);
  // From now on, acknowledgements wait until ReleaseAcks.
  void HoldAcks();
  // Acknowledges the held writes, in `order`, and stops holding.
  void ReleaseAcks(AckOrder order = AckOrder::kInOrder);
  // Writes handed in and not yet acknowledged.
  int64_t pending_acks() const;
  // Waits until at least `n` writes are pending; false after `timeout`.
  bool AwaitPendingAcks(int64_t n, absl::Duration timeout) const;
  // What Stats() reports.
  void SetStats(const CoreStats& stats);
  int64_t calls(CoreCall call) const;
  // The named collection's handle, not counted as a call; null if none.
  std::shared_ptr<FakeCollection> Find(std::string_view name) const;

  // ---- ServiceCore.
  absl::Status Ready() const override;
  absl::Status CreateCollection(const CollectionSchema& schema,
                                Durability durability) override;
  absl::Status DropCollection(std::string_view name) override;
  absl::StatusOr<std::vector<CollectionInfo>> ListCollections() const override;
  absl::StatusOr<CollectionInfo> DescribeCollection(
      std::string_view name) const override;
  absl::StatusOr<std::shared_ptr<ServedCollection>> OpenCollection(
      std::string_view name) const override;
  CoreStats Stats() const override;

 private:
  friend class FakeCollection;

  struct PendingWrite {
    std::function<absl::StatusOr<WriteAck>()> apply;
    WriteCallback done;
  };

  // Counts the call and returns the error it was told to fail with, if any.
  absl::Status Enter(CoreCall call) const;
  // Queues a write for the ack thread.
  void Enqueue(PendingWrite write);
  void AckLoop();

  mutable std::array<std::atomic<int64_t>, kNumCoreCalls> calls_{};

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  absl::Status ready_ ABSL_GUARDED_BY(mu_);
  CoreStats stats_ ABSL_GUARDED_BY(mu_);
  mutable absl::flat_hash_map<int, std::deque<absl::Status>> failures_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<FakeCollection>> collections_
      ABSL_GUARDED_BY(mu_);
  std::deque<PendingWrite> pending_ ABSL_GUARDED_BY(mu_);
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  bool acking_ ABSL_GUARDED_BY(mu_) = false;  // the ack thread runs one
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread ack_thread_;
};

}  // namespace peakknn::testing
