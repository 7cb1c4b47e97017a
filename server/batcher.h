// The dynamic batcher of one collection: merges concurrent searches into
// engine batches.
//
// A batch is dispatched when the queued queries reach max_batch or the
// oldest queued request has waited max_delay. Requests with different k and
// recall targets share a batch: the batch runs with the largest k and the
// strictest (largest) target, and each request keeps its own first k; a
// stricter target only adds bins, so every request gets at least the recall
// it asked for. Requests whose deadline passed (or that were cancelled)
// while queued are completed with an error and never computed.
//
// A batcher's own thread forms and runs its batches; the engine
// parallelises inside a batch. The thread runs only while the batcher has
// searches: Submit starts it, and it ends once the queue has been empty for
// options.idle_timeout (base/on_demand_thread.h). So a server with many
// collections holds a thread only per collection searched lately, not per
// collection. Threads on demand rather than one pool for every batcher: a
// batch waits up to max_delay for company, and a shared pool would have to
// interleave those waits across collections; one loop per busy collection
// keeps that as simple as before. Independent of gRPC: completion is a
// callback.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/on_demand_thread.h"
#include "engine/collection.h"
#include "store/service_core.h"

namespace peakknn::server {

// What one engine batch did, for metrics.
struct BatchStats {
  int64_t requests = 0;
  int64_t queries = 0;
  int64_t rows_scanned = 0;
  int dim = 0;
  double engine_seconds = 0;
  double expected_recall = 1.0;  // of the batch's plan at its max k
};

class BatcherObserver {
 public:
  virtual ~BatcherObserver() = default;
  virtual void OnBatch(const std::string& collection,
                       const BatchStats& stats) = 0;
  // Queries waiting in the queue, after every change.
  virtual void OnQueueDepth(const std::string& collection, int64_t depth) = 0;
  // Requests dropped unanswered because their deadline passed in the queue.
  virtual void OnExpired(const std::string& collection, int64_t requests) = 0;
};

struct SearchJob {
  // Row-major [num_queries][dim]; must stay valid until `done` runs.
  std::span<const float> queries;
  int64_t num_queries = 0;
  int64_t k = 10;
  double recall_target = 0.95;  // resolved: in (0, 1], 1 = exact
  // > 0: scan with this many bins instead of planning from recall_target
  // (SearchParams::bins). Such jobs batch only with each other.
  int64_t bins = 0;
  // Anything but eventual (the default) is searched in a batch of its own.
  ReadConsistency consistency;
  absl::Time deadline = absl::InfiniteFuture();
  // Polled when the batch forms; true drops the job with CANCELLED.
  std::function<bool()> cancelled;
  // Exactly once, on the batcher thread (or in Submit's caller on
  // rejection). On success `batch` holds this job's queries at rows
  // [first_query, first_query + num_queries) with batch->results.k >= k.
  std::function<void(const absl::Status& status, const SearchResults* batch,
                     int64_t first_query)>
      done;
};

class Batcher {
 public:
  struct Options {
    int64_t max_batch = 256;  // queries
    absl::Duration max_delay = absl::Microseconds(1000);
    int64_t max_queue = 8192;  // queries
    // The thread ends after this long without a search.
    absl::Duration idle_timeout = absl::Seconds(5);
  };
  using SearchFn = std::function<absl::StatusOr<SearchResults>(
      std::span<const float> queries, const SearchParams& params,
      const ReadConsistency& consistency)>;

  // `observer` may be null and must outlive the batcher.
  Batcher(std::string collection, int dim, const Options& options,
          SearchFn search, BatcherObserver* observer);
  // Stops (see Stop).
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues a job, starting the thread if it is not running;
  // RESOURCE_EXHAUSTED when the queue would exceed max_queue queries,
  // UNAVAILABLE after Stop. On error `job.done` is not called.
  absl::Status Submit(SearchJob job);

  // Runs every queued job to completion and waits for the thread to end.
  // Idempotent.
  void Stop();

  int64_t queued_queries() const;

 private:
  struct Queued {
    SearchJob job;
    absl::Time enqueued;
  };
  // The thread's body: runs until stopping and drained, or idle.
  void Loop();
  // Answers a batch: drops the expired and cancelled jobs, then searches
  // the rest (SearchTogether).
  void RunBatch(std::deque<Queued>& batch);
  // One engine search for `jobs` with the most demanding of their plans,
  // then each job's done.
  void SearchTogether(const std::vector<SearchJob*>& jobs);

  const std::string collection_;
  const int dim_;
  const Options options_;
  const SearchFn search_;
  BatcherObserver* const observer_;

  mutable std::mutex mu_;
  // Signalled when a job is queued and on Stop.
  std::condition_variable cv_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_queries_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Running while queue_ is non-empty (Submit starts it under mu_); joined
  // by Stop. Start/Exiting/running under mu_.
  OnDemandThread thread_;
};

}  // namespace peakknn::server
