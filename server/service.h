// The peakknn.v1.VectorSearch gRPC service (callback API): the handlers.
//
// Each handler validates its request against the limits (request_limits.h),
// calls the ServiceCore, converts the answer (convert.h) and records the
// RPC's metrics. The other concerns live beside it: writes pass
// WriteAdmission (write_admission.h), InsertStream is its own reactor
// (insert_stream.h), and searches queue on the collection's Batcher
// (batcher_registry.h). Every call passes the Authorizer first when the
// server has one (--auth_tokens_file; authorizer.h): Start for the unary
// methods, InsertStream for the stream. While the core is not ready every
// RPC but PlanRecall without a collection answers the core's UNAVAILABLE.
// Writes are acknowledged with the collection's sequence number once
// durable (per --durability) and visible. Every method is registered raw
// and parses its own request (unary_call.h says why), so a request that is
// not its message is answered INVALID_ARGUMENT.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "peakknn/v1/vector_search.grpc.pb.h"
#include "server/authorizer.h"
#include "server/batcher_registry.h"
#include "server/config.h"
#include "server/inflight_budget.h"
#include "server/insert_stream_registry.h"
#include "server/metrics.h"
#include "server/request_limits.h"
#include "server/unary_call.h"
#include "server/write_admission.h"
#include "store/service_core.h"

namespace peakknn::server {

// Stacks the generated per-method mixins (each a template over its base)
// onto Base: RawMethods<B, M1, M2>::type is M1<M2<B>>.
template <class Base, template <class> class... Mixins>
struct RawMethods {
  using type = Base;
};
template <class Base, template <class> class First,
          template <class> class... Rest>
struct RawMethods<Base, First, Rest...> {
  using type = First<typename RawMethods<Base, Rest...>::type>;
};

// peakknn.v1.VectorSearch with every method on wire bytes (unary_call.h).
using VS = v1::VectorSearch;
using RawVectorSearchService = RawMethods<
    VS::Service, VS::WithRawCallbackMethod_CreateCollection,
    VS::WithRawCallbackMethod_DropCollection,
    VS::WithRawCallbackMethod_ListCollections,
    VS::WithRawCallbackMethod_DescribeCollection,
    VS::WithRawCallbackMethod_Search, VS::WithRawCallbackMethod_InsertStream,
    VS::WithRawCallbackMethod_Upsert, VS::WithRawCallbackMethod_Delete,
    VS::WithRawCallbackMethod_Get, VS::WithRawCallbackMethod_PlanRecall,
    VS::WithRawCallbackMethod_GetStats>::type;

class VectorSearchService final : public RawVectorSearchService {
 public:
  // `core` (which may not be ready yet), `metrics` and `authorizer` must
  // outlive the service. A null `authorizer` lets every caller call every
  // method (no --auth_tokens_file).
  VectorSearchService(const ServerConfig& config, ServiceCore* core,
                      Metrics* metrics, const Authorizer* authorizer = nullptr);
  ~VectorSearchService() override;

  // Publishes every collection's row counts; call once the core is ready.
  void PublishCollectionRows();

  // Completes every queued search and stops the batchers; later searches
  // get UNAVAILABLE. Call after the gRPC server stopped accepting calls.
  void StopBatchers();

  // The RPCs, on their requests' wire bytes.
  grpc::ServerUnaryReactor* CreateCollection(
      grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* DropCollection(grpc::CallbackServerContext* ctx,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListCollections(
      grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* DescribeCollection(
      grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* InsertStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Upsert(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const grpc::ByteBuffer* request,
                                grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* PlanRecall(grpc::CallbackServerContext* ctx,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* ctx,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;

 private:
  // OK when the caller may call `method` (always without an authorizer).
  absl::Status Authorize(const grpc::CallbackServerContext* ctx,
                         absl::string_view method) const;
  // Every unary call starts here: creates its reactor (which parses the
  // request), then admits the call: the caller's role first, then the
  // parse. A refused call is finished here; an admitted one goes to
  // `serve(call, start)` (void(UnaryCall<Request, Response>*, absl::Time)),
  // which must finish it, now or later.
  template <typename Request, typename Response, typename ServeFn>
  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* ctx,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response,
                                  absl::string_view method, ServeFn serve);
  // Start for a handler whose work is synchronous: runs `body`
  // (absl::Status(const Request*, Response*)), records the RPC's metrics
  // and finishes the call with its status.
  template <typename Request, typename Response, typename Body>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response,
                                  absl::string_view method, Body body);
  // Records the RPC's metrics and finishes `call`.
  template <typename Call>
  void Finish(Call* call, absl::string_view method, absl::Time start,
              const absl::Status& status);

  // Validates the search and queues it on its collection's batcher; on OK
  // the batcher finishes `call`.
  absl::Status QueueSearch(
      grpc::CallbackServerContext* ctx,
      UnaryCall<v1::SearchRequest, v1::SearchResponse>* call, absl::Time start);

  const ServerConfig config_;
  const RequestLimits limits_;
  ServiceCore* const core_;
  Metrics* const metrics_;
  const Authorizer* const authorizer_;  // null: no authentication
  const absl::Time started_ = absl::Now();

  // Every call's request bytes (unary_call.h, insert_stream.h).
  InflightBudget inflight_;
  WriteAdmission writes_;
  BatcherRegistry batchers_;
  InsertStreamRegistry streams_;

  std::atomic<uint64_t> search_requests_{0};
  std::atomic<uint64_t> search_queries_{0};
};

}  // namespace peakknn::server
