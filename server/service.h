// The peakknn.v1.VectorSearch gRPC service (callback API): the handlers.
//
// Each handler validates its request against the limits (request_limits.h),
// calls the ServiceCore, converts the answer (convert.h) and records the
// RPC's metrics. The other concerns live beside it: writes pass
// WriteAdmission (write_admission.h), InsertStream is its own reactor
// (insert_stream.h), and searches queue on the collection's Batcher
// (batcher_registry.h). While the core is not ready every RPC but
// PlanRecall without a collection answers the core's UNAVAILABLE. Writes
// are acknowledged with the collection's sequence number once durable (per
// --durability) and visible.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "peakknn/v1/vector_search.grpc.pb.h"
#include "server/batcher_registry.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/request_limits.h"
#include "server/write_admission.h"
#include "store/service_core.h"

namespace peakknn::server {

class VectorSearchService final : public v1::VectorSearch::CallbackService {
 public:
  // `core` (which may not be ready yet) and `metrics` must outlive the
  // service.
  VectorSearchService(const ServerConfig& config, ServiceCore* core,
                      Metrics* metrics);
  ~VectorSearchService() override;

  // Publishes every collection's row counts; call once the core is ready.
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
  // Runs `body` (a handler's synchronous work), records the RPC's metrics
  // and finishes the call with its status.
  template <typename Body>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx,
                                  absl::string_view method, Body body);
  // Finishes `reactor` (whose work ended asynchronously) and records the
  // RPC's metrics.
  void FinishAsync(grpc::ServerUnaryReactor* reactor, absl::string_view method,
                   absl::Time start, const absl::Status& status);

  // Validates the search and queues it on its collection's batcher; on OK
  // the batcher finishes `reactor`.
  absl::Status QueueSearch(grpc::CallbackServerContext* ctx,
                           grpc::ServerUnaryReactor* reactor,
                           const v1::SearchRequest* req,
                           v1::SearchResponse* resp, absl::Time start);

  const ServerConfig config_;
  const RequestLimits limits_;
  ServiceCore* const core_;
  Metrics* const metrics_;
  const absl::Time started_ = absl::Now();

  WriteAdmission writes_;
  BatcherRegistry batchers_;

  std::atomic<uint64_t> search_requests_{0};
  std::atomic<uint64_t> search_queries_{0};
};

}  // namespace peakknn::server
