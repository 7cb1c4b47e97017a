// The peakknn.v1.VectorSearch gRPC service (callback API).
//
// Validates every request against the limits, routes searches through the
// per-collection Batcher and everything else straight to the
// CollectionRegistry, and records per-RPC metrics. Until SetRegistry is
// called (recovery still running) every RPC answers UNAVAILABLE.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "peakknn/v1/vector_search.grpc.pb.h"
#include "server/batcher.h"
#include "server/collection_registry.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/request_limits.h"

namespace peakknn::server {

class VectorSearchService final : public v1::VectorSearch::CallbackService,
                                  private BatcherObserver {
 public:
  // `metrics` must outlive the service.
  VectorSearchService(const ServerConfig& config, std::string backend_name,
                      Metrics* metrics);
  ~VectorSearchService() override;

  // Installs the opened (recovered) registry; RPCs are served from then on.
  // Call once.
  void SetRegistry(std::unique_ptr<CollectionRegistry> registry);
  CollectionRegistry* registry() const;

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

  // The registry, or UNAVAILABLE while recovering.
  absl::StatusOr<CollectionRegistry*> Ready() const;
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
  // Validates, writes, updates metrics: shared by Upsert and InsertStream.
  absl::StatusOr<WriteResult> WriteRows(absl::string_view collection,
                                        WriteMode mode,
                                        std::span<const uint64_t> ids,
                                        std::span<const float> vectors);
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
  const std::string backend_name_;
  Metrics* const metrics_;
  const absl::Time started_ = absl::Now();

  std::unique_ptr<CollectionRegistry> registry_;  // written once, then read
  std::atomic<bool> ready_{false};

  absl::Mutex batchers_mu_;
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
