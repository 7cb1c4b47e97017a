#include "server/metrics.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"

namespace peakknn::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// Latency buckets from 50 us to 30 s, roughly x2.5 apart (seconds).
Histogram::BucketBoundaries LatencyBuckets() {
  return {50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
          50e-3, 100e-3, 250e-3, 500e-3, 1,    2.5,    5,    10,    30};
}

// Powers of two from 1 to 65536 (queries or requests per batch).
Histogram::BucketBoundaries SizeBuckets() {
  Histogram::BucketBoundaries b;
  for (double v = 1; v <= 65536; v *= 2) b.push_back(v);
  return b;
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      rpc_requests_(BuildCounter()
                        .Name("peakknn_rpc_requests_total")
                        .Help("gRPC requests finished, by method and status")
                        .Register(*registry_)),
      rpc_seconds_(BuildHistogram()
                       .Name("peakknn_rpc_duration_seconds")
                       .Help("gRPC request latency, by method and status")
                       .Register(*registry_)),
      batch_queries_(BuildHistogram()
                         .Name("peakknn_search_batch_queries")
                         .Help("Queries per engine batch formed by the batcher")
                         .Register(*registry_)
                         .Add({}, SizeBuckets())),
      batch_requests_(BuildHistogram()
                          .Name("peakknn_search_batch_requests")
                          .Help("Search requests merged into one engine batch")
                          .Register(*registry_)
                          .Add({}, SizeBuckets())),
      engine_seconds_(BuildHistogram()
                          .Name("peakknn_search_engine_duration_seconds")
                          .Help("Engine time per search batch")
                          .Register(*registry_)
                          .Add({}, LatencyBuckets())),
      engine_seconds_total_(BuildCounter()
                                .Name("peakknn_search_engine_seconds_total")
                                .Help("Engine time spent in search batches")
                                .Register(*registry_)
                                .Add({})),
      engine_flops_total_(
          BuildCounter()
              .Name("peakknn_search_flops_total")
              .Help("Floating-point operations of the distance matmuls "
                    "(2 * queries * rows * dim per batch)")
              .Register(*registry_)
              .Add({})),
      engine_flops_per_second_(
          BuildGauge()
              .Name("peakknn_search_flops_per_second")
              .Help("Achieved FLOP/s of the last search batch")
              .Register(*registry_)
              .Add({})),
      backend_device_memory_bytes_(
          BuildGauge()
              .Name("peakknn_backend_device_memory_bytes")
              .Help("Device memory the search backend holds: row mirrors and "
                    "workspaces (0 for the CPU backend)")
              .Register(*registry_)
              .Add({})),
      inflight_bytes_(
          BuildGauge()
              .Name("peakknn_inflight_bytes")
              .Help("Bytes of requests held by calls in flight, counted "
                    "against --max_inflight_bytes")
              .Register(*registry_)
              .Add({})),
      searched_queries_(BuildCounter()
                            .Name("peakknn_search_queries_total")
                            .Help("Query vectors searched")
                            .Register(*registry_)
                            .Add({})),
      wal_fsync_seconds_(BuildHistogram()
                             .Name("peakknn_wal_fsync_duration_seconds")
                             .Help("WAL group-commit fsync latency")
                             .Register(*registry_)
                             .Add({}, LatencyBuckets())),
      checkpoint_seconds_(BuildHistogram()
                              .Name("peakknn_checkpoint_duration_seconds")
                              .Help("Checkpoint duration")
                              .Register(*registry_)
                              .Add({}, LatencyBuckets())),
      rows_(BuildGauge()
                .Name("peakknn_collection_rows")
                .Help("Slots used per collection, deleted rows included")
                .Register(*registry_)),
      live_rows_(BuildGauge()
                     .Name("peakknn_collection_live_rows")
                     .Help("Searchable rows per collection")
                     .Register(*registry_)),
      queue_depth_(BuildGauge()
                       .Name("peakknn_search_queue_depth_queries")
                       .Help("Queries waiting in a collection's batcher")
                       .Register(*registry_)),
      expected_recall_(
          BuildGauge()
              .Name("peakknn_search_expected_recall")
              .Help("Expected recall@k of the last batch's plan (max k)")
              .Register(*registry_)),
      inserted_rows_(BuildCounter()
                         .Name("peakknn_inserted_rows_total")
                         .Help("Rows written by inserts and upserts")
                         .Register(*registry_)),
      expired_(BuildCounter()
                   .Name("peakknn_search_expired_total")
                   .Help("Search requests dropped uncomputed because their "
                         "deadline passed while queued")
                   .Register(*registry_)) {}

Metrics::~Metrics() = default;

absl::StatusOr<int> Metrics::Serve(const std::string& address) {
  // prometheus-cpp reports bind failures by exception; keep it inside.
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "--metrics_listen=", address, ": cannot serve /metrics: ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("--metrics_listen=", address, ": exposer bound no port"));
  }
  return ports.front();
}

void Metrics::SetBackend(const std::string& name) {
  BuildGauge()
      .Name("peakknn_backend_info")
      .Help("The search backend (label backend: cpu or cuda); always 1")
      .Register(*registry_)
      .Add({{"backend", name}})
      .Set(1);
}

void Metrics::AddInflightBytes(int64_t delta) {
  inflight_bytes_.Increment(static_cast<double>(delta));
}

void Metrics::WatchBackendDeviceMemory(std::function<int64_t()> bytes) {
  std::lock_guard<std::mutex> lock(device_memory_mu_);
  device_memory_bytes_ = std::move(bytes);
}

void Metrics::RefreshBackendDeviceMemory() {
  std::function<int64_t()> bytes;
  {
    std::lock_guard<std::mutex> lock(device_memory_mu_);
    bytes = device_memory_bytes_;
  }
  if (bytes) backend_device_memory_bytes_.Set(static_cast<double>(bytes()));
}

void Metrics::ObserveRpc(absl::string_view method, absl::StatusCode code,
                         absl::Duration latency) {
  const prometheus::Labels labels = {{"method", std::string(method)},
                                     {"code", absl::StatusCodeToString(code)}};
  rpc_requests_.Add(labels).Increment();
  rpc_seconds_.Add(labels, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

Metrics::PerCollection& Metrics::For(const std::string& collection) {
  auto it = collections_.find(collection);
  if (it != collections_.end()) return it->second;
  const prometheus::Labels labels = {{"collection", collection}};
  PerCollection per{
      &rows_.Add(labels),          &live_rows_.Add(labels),
      &queue_depth_.Add(labels),   &expected_recall_.Add(labels),
      &inserted_rows_.Add(labels), &expired_.Add(labels),
  };
  return collections_.emplace(collection, per).first->second;
}

void Metrics::SetCollectionRows(const std::string& collection, int64_t rows,
                                int64_t live_rows) {
  std::lock_guard<std::mutex> lock(mu_);
  PerCollection& per = For(collection);
  per.rows->Set(static_cast<double>(rows));
  per.live_rows->Set(static_cast<double>(live_rows));
}

void Metrics::AddInsertedRows(const std::string& collection, int64_t rows) {
  std::lock_guard<std::mutex> lock(mu_);
  For(collection).inserted_rows->Increment(static_cast<double>(rows));
}

void Metrics::RemoveCollection(const std::string& collection) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = collections_.find(collection);
  if (it == collections_.end()) return;
  rows_.Remove(it->second.rows);
  live_rows_.Remove(it->second.live_rows);
  queue_depth_.Remove(it->second.queue_depth);
  expected_recall_.Remove(it->second.expected_recall);
  inserted_rows_.Remove(it->second.inserted_rows);
  expired_.Remove(it->second.expired);
  collections_.erase(it);
}

void Metrics::ObserveWalFsync(double seconds) {
  wal_fsync_seconds_.Observe(seconds);
}

void Metrics::ObserveCheckpoint(double seconds) {
  checkpoint_seconds_.Observe(seconds);
}

void Metrics::OnBatch(const std::string& collection, const BatchStats& stats) {
  batches_.fetch_add(1, std::memory_order_relaxed);
  batch_queries_.Observe(static_cast<double>(stats.queries));
  batch_requests_.Observe(static_cast<double>(stats.requests));
  engine_seconds_.Observe(stats.engine_seconds);
  engine_seconds_total_.Increment(stats.engine_seconds);
  searched_queries_.Increment(static_cast<double>(stats.queries));
  const double flops = 2.0 * static_cast<double>(stats.queries) *
                       static_cast<double>(stats.rows_scanned) * stats.dim;
  engine_flops_total_.Increment(flops);
  if (stats.engine_seconds > 0) {
    engine_flops_per_second_.Set(flops / stats.engine_seconds);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    For(collection).expected_recall->Set(stats.expected_recall);
  }
  // Workspaces grow with the batch shapes searched.
  RefreshBackendDeviceMemory();
}

void Metrics::OnQueueDepth(const std::string& collection, int64_t depth) {
  std::lock_guard<std::mutex> lock(mu_);
  For(collection).queue_depth->Set(static_cast<double>(depth));
}

void Metrics::OnExpired(const std::string& collection, int64_t requests) {
  std::lock_guard<std::mutex> lock(mu_);
  For(collection).expired->Increment(static_cast<double>(requests));
}

}  // namespace peakknn::server
