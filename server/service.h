// The peakknn.v1.VectorSearch gRPC service (callback API).
//
// Validates every request against the limits, routes searches through the
// per-collection Batcher and everything else straight to the durable
// CollectionManager, and records per-RPC metrics. While the manager
// recovers, every RPC but PlanRecall without a collection answers
// UNAVAILABLE. Writes are acknowledged with the collection's durable
// sequence number once logged (and fsynced, per --durability) and visible.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "peakknn/v1/vector_search.grpc.pb.h"
#include "server/batcher.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/request_limits.h"
#include "store/service_core.h"

namespace peakknn::server {

class VectorSearchService final : public v1::VectorSearch::CallbackService,
                                  private BatcherObserver {
 public:
  // `core` (which may still be recovering) and `metrics` must outlive the
  // service.
  VectorSearchService(const ServerConfig& config, ServiceCore* core,
                      Metrics* metrics);
  ~VectorSearchService() override;

  // Publishes every collection's row counts; call once recovery succeeded.
  void PublishCollectionRows();

  // Completes every queued search and stops the batchers; later searches
  // get UNAVAILABLE. Call after the gRPC server stopped accepting calls.
  void StopBatchers();

  grpc::ServerUnaryReactor* CreateCollection(
      grpc::CallbackServerContext* ctx, const v1::CreateCollectionRequest* req,
      v1::CreateCollectionResponse* resp) override;
  grpc::ServerUnaryReactor* DropCollection(
      grpc::CallbackServerContext* ctx, const v1::DropCollectionRequest* req,
      v1::DropCollectionResponse* resp) override;
  grpc::ServerUnaryReactor* ListCollections(
      grpc::CallbackServerContext* ctx, const v1::ListCollectionsRequest* req,
      v1::ListCollectionsResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeCollection(
      grpc::CallbackServerContext* ctx,
      const v1::DescribeCollectionRequest* req,
      v1::DescribeCollectionResponse* resp) override;
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx,
                                   const v1::SearchRequest* req,
                                   v1::SearchResponse* resp) override;
  grpc::ServerBidiReactor<v1::InsertRequest, v1::InsertAck>* InsertStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Upsert(grpc::CallbackServerContext* ctx,
                                   const v1::UpsertRequest* req,
                                   v1::UpsertResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const v1::DeleteRequest* req,
                                   v1::DeleteResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const v1::GetRequest* req,
                                v1::GetResponse* resp) override;
  grpc::ServerUnaryReactor* PlanRecall(grpc::CallbackServerContext* ctx,
                                       const v1::PlanRecallRequest* req,
                                       v1::PlanRecallResponse* resp) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* ctx,
                                     const v1::GetStatsRequest* req,
                                     v1::GetStatsResponse* resp) override;

 private:
  class InsertReactor;

  // The collection's handle, or the core's error (NOT_FOUND, UNAVAILABLE
  // while recovering).
  absl::StatusOr<std::shared_ptr<ServedCollection>> Open(
      absl::string_view name) const;
  // Describes every collection, sorted by name (skips one dropped meanwhile).
  std::vector<CollectionInfo> ListInfos() const;
  // Sets the collection's row gauges from its current snapshot.
  void PublishRows(const std::string& name, const ServedCollection& collection);
  // Records the RPC's metrics and finishes its default reactor (which must
  // not have been taken before: DefaultReactor() re-constructs it).
  grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx,
                                   absl::string_view method, absl::Time start,
                                   const absl::Status& status);
  void RecordRpc(absl::string_view method, absl::Time start,
                 absl::StatusCode code);
  absl::StatusOr<std::shared_ptr<Batcher>> BatcherFor(
      const CollectionSchema& schema);
  void ForgetBatcher(const std::string& name);
  // Validates a write batch against the limits and the collection's dim;
  // returns the collection (for PublishRows). Shared by Upsert and
  // InsertStream.
  absl::StatusOr<std::shared_ptr<ServedCollection>> CheckWrite(
      absl::string_view collection, std::span<const uint64_t> ids,
      std::span<const float> vectors);
  // Device memory the backend holds, bytes (0 for the CPU).
  int64_t BackendDeviceMemoryBytes() const;
  // Metrics of an acknowledged write.
  void OnWritten(const std::string& name, const ServedCollection& collection,
                 int64_t rows);
  // Validates and queues; on OK the batcher finishes `reactor`.
  absl::Status SearchBody(grpc::CallbackServerContext* ctx,
                          grpc::ServerUnaryReactor* reactor,
                          const v1::SearchRequest* req,
                          v1::SearchResponse* resp, absl::Time start);

  // BatcherObserver: counts batches, forwards to metrics.
  void OnBatch(const std::string& collection, const BatchStats& stats) override;
  void OnQueueDepth(const std::string& collection, int64_t depth) override;
  void OnExpired(const std::string& collection, int64_t requests) override;

  const ServerConfig config_;
  const RequestLimits limits_;
  Metrics* const metrics_;
  const absl::Time started_ = absl::Now();

  ServiceCore* const core_;
  // Every write of this server, per --durability.
  const WriteOptions write_options_;

  std::mutex batchers_mu_;
  struct BatcherEntry {
    int dim;
    std::shared_ptr<Batcher> batcher;
  };
  absl::flat_hash_map<std::string, BatcherEntry> batchers_
      ABSL_GUARDED_BY(batchers_mu_);
  bool batchers_stopped_ ABSL_GUARDED_BY(batchers_mu_) = false;

  std::atomic<uint64_t> search_requests_{0};
  std::atomic<uint64_t> search_queries_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> inserted_rows_{0};
};

}  // namespace peakknn::server
