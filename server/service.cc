#include "server/service.h"

#include <chrono>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "base/string_view.h"
#include "engine/recall_calculator.h"
#include "engine/vector_checks.h"
#include "server/convert.h"
#include "server/insert_stream.h"

namespace peakknn::server {
namespace {

absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

Batcher::Options BatcherOptions(const ServerConfig& config) {
  Batcher::Options options;
  options.max_batch = config.max_batch;
  options.max_delay = absl::Microseconds(config.max_delay_us);
  options.max_queue = config.max_queue;
  return options;
}

// Every collection (empty while the core cannot list them).
std::vector<CollectionInfo> ListInfos(const ServiceCore& core) {
  absl::StatusOr<std::vector<CollectionInfo>> infos = core.ListCollections();
  return infos.ok() ? *std::move(infos) : std::vector<CollectionInfo>();
}

}  // namespace

VectorSearchService::VectorSearchService(const ServerConfig& config,
                                         ServiceCore* core, Metrics* metrics,
                                         const Authorizer* authorizer)
    : config_(config),
      limits_(RequestLimits::From(config)),
      core_(core),
      metrics_(metrics),
      authorizer_(authorizer),
      inflight_(config.max_inflight_bytes,
                [metrics](int64_t delta) { metrics->AddInflightBytes(delta); }),
      writes_(core, limits_, config.durability, metrics),
      batchers_(BatcherOptions(config), metrics),
      streams_(InsertStreamRegistry::Options{
          .max_streams = config.max_insert_streams,
          .idle_timeout = absl::Seconds(config.insert_stream_idle_s)}) {
  metrics_->WatchBackendDeviceMemory(
      [core] { return core->Stats().backend_device_memory_bytes; });
}

VectorSearchService::~VectorSearchService() {
  StopBatchers();
  metrics_->WatchBackendDeviceMemory(nullptr);
}

void VectorSearchService::PublishCollectionRows() {
  for (const CollectionInfo& info : ListInfos(*core_)) {
    metrics_->SetCollectionRows(info.schema.name, info.rows, info.live_rows);
  }
}

void VectorSearchService::StopBatchers() { batchers_.StopAll(); }

absl::Status VectorSearchService::Authorize(
    const grpc::CallbackServerContext* ctx, absl::string_view method) const {
  if (authorizer_ == nullptr) return absl::OkStatus();
  return authorizer_->Check(*ctx, method);
}

template <typename Request, typename Response, typename ServeFn>
grpc::ServerUnaryReactor* VectorSearchService::Start(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response, absl::string_view method, ServeFn serve) {
  const absl::Time start = absl::Now();
  auto* call = new UnaryCall<Request, Response>(request, response);
  absl::Status admitted = Authorize(ctx, method);
  if (admitted.ok()) admitted = call->Admit(&inflight_, SV(method));
  if (admitted.ok()) {
    serve(call, start);
  } else {
    Finish(call, method, start, admitted);
  }
  // gRPC keeps the call until this returns it, even if it is finished.
  return call;
}

template <typename Request, typename Response, typename Body>
grpc::ServerUnaryReactor* VectorSearchService::Serve(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response, absl::string_view method, Body body) {
  return Start<Request, Response>(
      ctx, request, response, method,
      [&](UnaryCall<Request, Response>* call, absl::Time start) {
        Finish(call, method, start, body(call->request(), call->response()));
      });
}

template <typename Call>
void VectorSearchService::Finish(Call* call, absl::string_view method,
                                 absl::Time start, const absl::Status& status) {
  metrics_->ObserveRpc(method, status.code(), absl::Now() - start);
  call->Finish(status);
}

// ---- Collections

grpc::ServerUnaryReactor* VectorSearchService::CreateCollection(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve<v1::CreateCollectionRequest, v1::CreateCollectionResponse>(
      ctx, request, response, "CreateCollection",
      [&](const v1::CreateCollectionRequest* req,
          v1::CreateCollectionResponse* resp) -> absl::Status {
        PEAKKNN_RETURN_IF_ERROR(core_->Ready());
        PEAKKNN_RETURN_IF_ERROR(
            limits_.CheckName("schema.name", req->schema().name()));
        PEAKKNN_RETURN_IF_ERROR(limits_.CheckDim(req->schema().dim()));
        PEAKKNN_ASSIGN_OR_RETURN(
            const CollectionSchema schema,
            SchemaFromProto(req->schema(),
                            CollectionSchema{}.default_recall_target));
        PEAKKNN_RETURN_IF_ERROR(
            core_->CreateCollection(schema, Durability::kDefault));
        PEAKKNN_ASSIGN_OR_RETURN(const CollectionInfo info,
                                 core_->DescribeCollection(schema.name));
        InfoToProto(info, resp->mutable_info());
        metrics_->SetCollectionRows(schema.name, 0, 0);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* VectorSearchService::DropCollection(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve<v1::DropCollectionRequest, v1::DropCollectionResponse>(
      ctx, request, response, "DropCollection",
      [&](const v1::DropCollectionRequest* req,
          v1::DropCollectionResponse*) -> absl::Status {
        PEAKKNN_RETURN_IF_ERROR(core_->Ready());
        PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("name", req->name()));
        PEAKKNN_RETURN_IF_ERROR(core_->DropCollection(req->name()));
        batchers_.Forget(req->name());
        metrics_->RemoveCollection(req->name());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* VectorSearchService::ListCollections(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve<v1::ListCollectionsRequest, v1::ListCollectionsResponse>(
      ctx, request, response, "ListCollections",
      [&](const v1::ListCollectionsRequest*,
          v1::ListCollectionsResponse* resp) -> absl::Status {
        PEAKKNN_RETURN_IF_ERROR(core_->Ready());
        PEAKKNN_ASSIGN_OR_RETURN(const std::vector<CollectionInfo> infos,
                                 core_->ListCollections());
        for (const CollectionInfo& info : infos) {
          InfoToProto(info, resp->add_collections());
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* VectorSearchService::DescribeCollection(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve<v1::DescribeCollectionRequest, v1::DescribeCollectionResponse>(
      ctx, request, response, "DescribeCollection",
      [&](const v1::DescribeCollectionRequest* req,
          v1::DescribeCollectionResponse* resp) -> absl::Status {
        PEAKKNN_RETURN_IF_ERROR(core_->Ready());
        PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("name", req->name()));
        PEAKKNN_ASSIGN_OR_RETURN(const CollectionInfo info,
                                 core_->DescribeCollection(req->name()));
        InfoToProto(info, resp->mutable_info());
        return absl::OkStatus();
      });
}

// ---- Search

absl::Status VectorSearchService::QueueSearch(
    grpc::CallbackServerContext* ctx,
    UnaryCall<v1::SearchRequest, v1::SearchResponse>* call, absl::Time start) {
  const v1::SearchRequest* req = call->request();
  PEAKKNN_RETURN_IF_ERROR(core_->Ready());
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", req->collection()));
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckK(req->k()));
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckRecallTarget(req->recall_target()));
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckBins(req->bins(), req->recall_target()));
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<ServedCollection> collection,
                           core_->OpenCollection(req->collection()));
  const CollectionSchema& schema = collection->schema();
  const std::span<const float> queries = SpanOf(req->queries());
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckVectors(
      "queries", queries, schema.dim, -1, limits_.max_queries_per_request,
      "--max_queries_per_request"));
  const int64_t num_queries = static_cast<int64_t>(queries.size()) / schema.dim;
  PEAKKNN_RETURN_IF_ERROR(
      CheckVectors(schema, queries, num_queries, "queries"));
  PEAKKNN_ASSIGN_OR_RETURN(
      ReadConsistency consistency,
      ConsistencyFromProto(req->consistency(), req->after()));
  // A router's read at a position: wait here, before the batch forms.
  PEAKKNN_RETURN_IF_ERROR(
      collection->AwaitApplied(req->min_applied_sequence(), DeadlineOf(ctx)));
  PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<Batcher> batcher,
                           batchers_.For(collection));

  SearchJob job;
  job.queries = queries;
  job.num_queries = num_queries;
  job.k = req->k();
  job.recall_target = req->recall_target() == 0 ? schema.default_recall_target
                                                : req->recall_target();
  job.bins = req->bins();
  job.consistency = std::move(consistency);
  job.deadline = DeadlineOf(ctx);
  job.cancelled = [ctx] { return ctx->IsCancelled(); };
  job.done = [this, call, start, k = job.k, num_queries](
                 const absl::Status& status, const SearchResults* batch,
                 int64_t first) {
    if (status.ok()) {
      SearchResultsToProto(*batch, first, num_queries, k, call->response());
      search_requests_.fetch_add(1, std::memory_order_relaxed);
      search_queries_.fetch_add(static_cast<uint64_t>(num_queries),
                                std::memory_order_relaxed);
    }
    Finish(call, "Search", start, status);
  };
  return batcher->Submit(std::move(job));
}

grpc::ServerUnaryReactor* VectorSearchService::Search(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::SearchRequest, v1::SearchResponse>;
  return Start<v1::SearchRequest, v1::SearchResponse>(
      ctx, request, response, "Search", [&](Call* call, absl::Time start) {
        // On success the batcher finishes the call (possibly already has).
        const absl::Status status = QueueSearch(ctx, call, start);
        if (!status.ok()) Finish(call, "Search", start, status);
      });
}

// ---- Writes

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
VectorSearchService::InsertStream(grpc::CallbackServerContext* ctx) {
  return NewInsertStreamReactor(Authorize(ctx, "InsertStream"),
                                {.admission = &writes_,
                                 .metrics = metrics_,
                                 .streams = &streams_,
                                 .budget = &inflight_});
}

// Unary writes complete asynchronously: the handler admits the batch and
// hands it to the core, and the core's acknowledgement (after the group's
// fsync) fills the response and finishes the call. No gRPC thread waits out
// an fsync, and concurrent unary writes share the group commit like stream
// batches do. The call (request and response) lives until gRPC is done
// with it, after the Finish in the core's callback, so the core may read
// the request's vectors in place (an owner that owns nothing, only marks
// them as staying valid).
grpc::ServerUnaryReactor* VectorSearchService::Upsert(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::UpsertRequest, v1::UpsertResponse>;
  return Start<v1::UpsertRequest, v1::UpsertResponse>(
      ctx, request, response, "Upsert", [this](Call* call, absl::Time start) {
        const v1::UpsertRequest* req = call->request();
        writes_.WriteRows(
            req->collection(), WriteMode::kUpsert, SpanOf(req->ids()),
            SpanOf(req->vectors()),
            [this, call, start](absl::StatusOr<WriteAck> ack) {
              if (ack.ok()) {
                v1::UpsertResponse* resp = call->response();
                resp->set_sequence(ack->sequence);
                resp->set_rows(ack->rows);
                resp->set_durability(DurabilityToProto(ack->durability));
                TokenToProto(*ack, resp->mutable_token());
              }
              Finish(call, "Upsert", start, ack.status());
            },
            std::shared_ptr<const void>(std::shared_ptr<const void>(), req));
      });
}

grpc::ServerUnaryReactor* VectorSearchService::Delete(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::DeleteRequest, v1::DeleteResponse>;
  return Start<v1::DeleteRequest, v1::DeleteResponse>(
      ctx, request, response, "Delete", [this](Call* call, absl::Time start) {
        const v1::DeleteRequest* req = call->request();
        writes_.DeleteRows(
            req->collection(), SpanOf(req->ids()),
            [this, call, start](absl::StatusOr<WriteAck> ack) {
              if (ack.ok()) {
                v1::DeleteResponse* resp = call->response();
                resp->set_sequence(ack->sequence);
                resp->set_deleted(ack->rows);
                resp->set_durability(DurabilityToProto(ack->durability));
                TokenToProto(*ack, resp->mutable_token());
              }
              Finish(call, "Delete", start, ack.status());
            });
      });
}

// ---- Reads, planning and stats

grpc::ServerUnaryReactor* VectorSearchService::Get(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve<v1::GetRequest, v1::GetResponse>(
      ctx, request, response, "Get",
      [&](const v1::GetRequest* req, v1::GetResponse* resp) -> absl::Status {
        PEAKKNN_RETURN_IF_ERROR(core_->Ready());
        PEAKKNN_RETURN_IF_ERROR(
            limits_.CheckName("collection", req->collection()));
        PEAKKNN_RETURN_IF_ERROR(limits_.CheckIds("ids", req->ids_size()));
        PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<ServedCollection> collection,
                                 core_->OpenCollection(req->collection()));
        PEAKKNN_RETURN_IF_ERROR(
            limits_.CheckGetAnswer(req->ids_size(), collection->schema().dim));
        const std::span<const uint64_t> ids = SpanOf(req->ids());
        PEAKKNN_ASSIGN_OR_RETURN(
            const ReadConsistency consistency,
            ConsistencyFromProto(req->consistency(), req->after()));
        PEAKKNN_RETURN_IF_ERROR(collection->AwaitApplied(
            req->min_applied_sequence(), DeadlineOf(ctx)));
        PEAKKNN_ASSIGN_OR_RETURN(const auto vectors,
                                 collection->Get(ids, consistency));
        StoredVectorsToProto(ids, vectors, resp);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* VectorSearchService::PlanRecall(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve<v1::PlanRecallRequest, v1::PlanRecallResponse>(
      ctx, request, response, "PlanRecall",
      [&](const v1::PlanRecallRequest* req,
          v1::PlanRecallResponse* resp) -> absl::Status {
        PEAKKNN_RETURN_IF_ERROR(limits_.CheckK(req->k()));
        PEAKKNN_RETURN_IF_ERROR(limits_.CheckPlan(
            req->recall_target(), req->per_bin(), req->shards()));
        if (!req->collection().empty()) {
          PEAKKNN_RETURN_IF_ERROR(
              limits_.CheckName("collection", req->collection()));
        }
        int64_t n = req->n();
        // In range after CheckPlan.
        int shards = req->shards() == 0 ? 1 : static_cast<int>(req->shards());
        if (!req->collection().empty()) {
          PEAKKNN_RETURN_IF_ERROR(core_->Ready());
          PEAKKNN_ASSIGN_OR_RETURN(std::shared_ptr<ServedCollection> collection,
                                   core_->OpenCollection(req->collection()));
          const RowCounts counts = collection->row_counts();
          if (n == 0) n = counts.live_rows;
          // A router's collection: planned for its shards.
          if (req->shards() == 0) shards = counts.shards;
        }
        const int per_bin =
            req->per_bin() == 0 ? 1 : static_cast<int>(req->per_bin());
        absl::StatusOr<RecallPlan> plan = peakknn::PlanRecall(
            n, req->k(), req->recall_target(), per_bin, shards);
        if (!plan.ok())
          return absl::InvalidArgumentError(plan.status().message());
        PlanToProto(*plan, n, resp);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* VectorSearchService::GetStats(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve<v1::GetStatsRequest, v1::GetStatsResponse>(
      ctx, request, response, "GetStats",
      [&](const v1::GetStatsRequest*,
          v1::GetStatsResponse* resp) -> absl::Status {
        PEAKKNN_RETURN_IF_ERROR(core_->Ready());
        const CoreStats core = core_->Stats();
        resp->set_version(PEAKKNN_VERSION);
        resp->set_backend(core.backend);
        resp->set_backend_device_memory_bytes(
            static_cast<uint64_t>(core.backend_device_memory_bytes));
        resp->set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - started_));
        for (const CollectionInfo& info : ListInfos(*core_)) {
          InfoToProto(info, resp->add_collections());
        }
        resp->set_search_requests(search_requests_.load());
        resp->set_search_queries(search_queries_.load());
        resp->set_batches(metrics_->batches());
        resp->set_inserted_rows(writes_.inserted_rows());
        resp->set_max_dim(static_cast<uint32_t>(config_.max_dim));
        resp->set_max_k(static_cast<uint32_t>(config_.max_k));
        resp->set_max_queries_per_request(
            static_cast<uint32_t>(config_.max_queries_per_request));
        resp->set_max_message_bytes(
            static_cast<uint64_t>(config_.max_message_bytes));
        return absl::OkStatus();
      });
}

}  // namespace peakknn::server
