// Prometheus metrics of peakknn-server, served on their own port at
// /metrics. Names are peakknn_* in base units (seconds, bytes, FLOP/s,
// *_total counters); see the constructor for the full list.
//
// Metrics is the BatcherObserver of every collection's batcher (batch sizes,
// engine time, queue depth, expired requests). Thread-safe. Per-collection
// series are created on first use and removed when the collection is
// dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/batcher.h"

namespace peakknn::server {

class Metrics : public BatcherObserver {
 public:
  Metrics();
  ~Metrics() override;

  // Starts the HTTP exposer on host:port (port 0: any free port) and returns
  // the bound port. Without Serve the metrics are still collected.
  absl::StatusOr<int> Serve(const std::string& address);

  // peakknn_backend_info{backend="cpu"|"cuda"} 1: where searches run. Call
  // once, at startup.
  void SetBackend(const std::string& name);
  // peakknn_backend_device_memory_bytes: device memory the backend holds
  // (row mirrors and workspaces; 0 on the CPU), as `bytes` reports it. Read
  // after every search batch and by RefreshBackendDeviceMemory; `bytes` is
  // called without any lock held. nullptr stops reading (the gauge keeps its
  // value).
  void WatchBackendDeviceMemory(std::function<int64_t()> bytes);
  // peakknn_inflight_bytes: request bytes held by calls in flight
  // (server/inflight_budget.h); `delta` is + on a reservation, - on its
  // release.
  void AddInflightBytes(int64_t delta);
  // Reads the watched device memory now (after writes: row mirrors grow as
  // rows reach the device).
  void RefreshBackendDeviceMemory();
  // One finished RPC, labelled with the status code's name ("OK",
  // "NOT_FOUND"...).
  void ObserveRpc(absl::string_view method, absl::StatusCode code,
                  absl::Duration latency);
  // Rows of a collection after a write (or at startup).
  void SetCollectionRows(const std::string& collection, int64_t rows,
                         int64_t live_rows);
  void AddInsertedRows(const std::string& collection, int64_t rows);
  void RemoveCollection(const std::string& collection);
  // Storage timings, fed by the CollectionManager's hooks (main.cc).
  void ObserveWalFsync(double seconds);
  void ObserveCheckpoint(double seconds);

  // BatcherObserver.
  void OnBatch(const std::string& collection, const BatchStats& stats) override;
  void OnQueueDepth(const std::string& collection, int64_t depth) override;
  void OnExpired(const std::string& collection, int64_t requests) override;

  // Engine batches searched since start (GetStats.batches).
  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }

  prometheus::Registry& registry() { return *registry_; }

 private:
  struct PerCollection {
    prometheus::Gauge* rows;
    prometheus::Gauge* live_rows;
    prometheus::Gauge* queue_depth;
    prometheus::Gauge* expected_recall;
    prometheus::Counter* inserted_rows;
    prometheus::Counter* expired;
  };
  PerCollection& For(const std::string& collection)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;

  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Histogram& batch_queries_;
  prometheus::Histogram& batch_requests_;
  prometheus::Histogram& engine_seconds_;
  prometheus::Counter& engine_seconds_total_;
  prometheus::Counter& engine_flops_total_;
  prometheus::Gauge& engine_flops_per_second_;
  prometheus::Gauge& backend_device_memory_bytes_;
  prometheus::Gauge& inflight_bytes_;
  prometheus::Counter& searched_queries_;
  prometheus::Histogram& wal_fsync_seconds_;
  prometheus::Histogram& checkpoint_seconds_;
  prometheus::Family<prometheus::Gauge>& rows_;
  prometheus::Family<prometheus::Gauge>& live_rows_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& expected_recall_;
  prometheus::Family<prometheus::Counter>& inserted_rows_;
  prometheus::Family<prometheus::Counter>& expired_;

  std::atomic<uint64_t> batches_{0};

  std::mutex device_memory_mu_;
  std::function<int64_t()> device_memory_bytes_
      ABSL_GUARDED_BY(device_memory_mu_);

  std::mutex mu_;
  absl::flat_hash_map<std::string, PerCollection> collections_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace peakknn::server
