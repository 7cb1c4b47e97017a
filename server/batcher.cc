#include "server/batcher.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/recall_calculator.h"

namespace peakknn::server {

Batcher::Batcher(std::string collection, int dim, const Options& options,
                 SearchFn search, BatcherObserver* observer)
    : collection_(std::move(collection)),
      dim_(dim),
      options_(options),
      search_(std::move(search)),
      observer_(observer),
      thread_(options.idle_timeout) {}

Batcher::~Batcher() { Stop(); }

absl::Status Batcher::Submit(SearchJob job) {
  int64_t depth;
  bool started;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return absl::UnavailableError(absl::StrCat(
          "collection \"", collection_, "\": search queue is shut down"));
    }
    if (queued_queries_ + job.num_queries > options_.max_queue) {
      return absl::ResourceExhaustedError(
          absl::StrCat("collection \"", collection_, "\": search queue full (",
                       queued_queries_, " queries queued, limit --max_queue=",
                       options_.max_queue, "); retry with backoff"));
    }
    queued_queries_ += job.num_queries;
    depth = queued_queries_;
    queue_.push_back({std::move(job), absl::Now()});
    started = thread_.Start([this] { Loop(); });
  }
  if (!started) cv_.notify_one();
  if (observer_ != nullptr) observer_->OnQueueDepth(collection_, depth);
  return absl::OkStatus();
}

void Batcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.Join();
}

int64_t Batcher::queued_queries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_queries_;
}

void Batcher::Loop() {
  for (;;) {
    std::deque<Queued> batch;
    int64_t depth;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, thread_.idle(),
                   [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                     return stopping_ || !queue_.empty();
                   });
      if (queue_.empty()) {  // idle, or stopping and drained
        thread_.Exiting();
        return;
      }
      // Wait for company until the batch is full or the oldest is due.
      const absl::Time due = queue_.front().enqueued + options_.max_delay;
      cv_.wait_until(lock, absl::ToChronoTime(due),
                     [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                       return stopping_ ||
                              queued_queries_ >= options_.max_batch;
                     });
      int64_t taken = 0;
      while (!queue_.empty() &&
             (batch.empty() ||
              taken + queue_.front().job.num_queries <= options_.max_batch)) {
        taken += queue_.front().job.num_queries;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_queries_ -= taken;
      depth = queued_queries_;
    }
    if (observer_ != nullptr) observer_->OnQueueDepth(collection_, depth);
    RunBatch(batch);
  }
}

void Batcher::RunBatch(std::deque<Queued>& batch) {
  // Drop what nobody waits for any more, before computing anything.
  const absl::Time now = absl::Now();
  std::vector<SearchJob*> live;
  int64_t expired = 0;
  for (Queued& q : batch) {
    if (q.job.deadline <= now) {
      ++expired;
      q.job.done(
          absl::DeadlineExceededError(absl::StrCat(
              "deadline passed after ", absl::FormatDuration(now - q.enqueued),
              " in the search queue; not computed")),
          nullptr, 0);
    } else if (q.job.cancelled && q.job.cancelled()) {
      q.job.done(absl::CancelledError("cancelled by the client while queued"),
                 nullptr, 0);
    } else {
      live.push_back(&q.job);
    }
  }
  if (expired > 0 && observer_ != nullptr) {
    observer_->OnExpired(collection_, expired);
  }
  if (live.empty()) return;

  // Jobs with a bin count (a router's share of a cluster plan) and jobs
  // with a recall target are searched as two batches: each batch takes the
  // most demanding plan of its jobs (the largest k, and the highest target
  // or the most bins), which meets every job's promise. A job that asks
  // for more than eventual consistency is searched alone: it may wait for
  // replicas (the others should not), and its token may be refused (the
  // others should not fail with it).
  std::vector<SearchJob*> by_target;
  std::vector<SearchJob*> by_bins;
  std::vector<SearchJob*> alone;
  for (SearchJob* job : live) {
    if (job->consistency.strong || !job->consistency.after.empty()) {
      alone.push_back(job);
    } else {
      (job->bins > 0 ? by_bins : by_target).push_back(job);
    }
  }
  if (!by_target.empty()) SearchTogether(by_target);
  if (!by_bins.empty()) SearchTogether(by_bins);
  for (SearchJob* job : alone) SearchTogether({job});
}

void Batcher::SearchTogether(const std::vector<SearchJob*>& jobs) {
  SearchParams params;
  params.k = 0;
  params.recall_target = 0;
  int64_t total = 0;
  for (const SearchJob* job : jobs) {
    params.k = std::max(params.k, job->k);
    if (job->bins > 0) {
      params.bins = std::max(params.bins, job->bins);
    } else {
      params.recall_target = std::max(params.recall_target, job->recall_target);
    }
    total += job->num_queries;
  }
  // One request alone is searched in place; several are packed together.
  std::vector<float> packed;
  std::span<const float> queries = jobs.front()->queries;
  if (jobs.size() > 1) {
    packed.reserve(static_cast<size_t>(total) * dim_);
    for (const SearchJob* job : jobs) {
      packed.insert(packed.end(), job->queries.begin(), job->queries.end());
    }
    queries = packed;
  }

  const absl::Time start = absl::Now();
  // Only a job searched alone has a consistency requirement.
  absl::StatusOr<SearchResults> outcome =
      search_(queries, params, jobs.front()->consistency);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!outcome.ok()) {
    for (SearchJob* job : jobs) job->done(outcome.status(), nullptr, 0);
    return;
  }
  if (observer_ != nullptr) {
    BatchStats stats;
    stats.requests = static_cast<int64_t>(jobs.size());
    stats.queries = total;
    stats.rows_scanned = outcome->rows_scanned;
    stats.dim = dim_;
    stats.engine_seconds = seconds;
    stats.expected_recall = outcome->expected_recall;
    observer_->OnBatch(collection_, stats);
  }
  int64_t first = 0;
  for (SearchJob* job : jobs) {
    job->done(absl::OkStatus(), &*outcome, first);
    first += job->num_queries;
  }
}

}  // namespace peakknn::server
