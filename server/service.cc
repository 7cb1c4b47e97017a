#include "server/service.h"

#include <algorithm>
#include <chrono>
#include <span>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/recall_calculator.h"
#include "server/convert.h"

namespace peakknn::server {
namespace {

// Returns early from a function returning absl::Status(Or) on error.
#define PEAKKNN_RETURN_IF_ERROR(expr)         \
  do {                                        \
    if (absl::Status _s = (expr); !_s.ok()) { \
      return _s;                              \
    }                                         \
  } while (false)

template <typename T>
std::span<const T> SpanOf(const google::protobuf::RepeatedField<T>& field) {
  return {field.data(), static_cast<size_t>(field.size())};
}

absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

}  // namespace

VectorSearchService::VectorSearchService(const ServerConfig& config,
                                         std::string backend_name,
                                         Metrics* metrics)
    : config_(config),
      limits_(RequestLimits::From(config)),
      backend_name_(std::move(backend_name)),
      metrics_(metrics) {}

VectorSearchService::~VectorSearchService() { StopBatchers(); }

void VectorSearchService::SetRegistry(
    std::unique_ptr<CollectionRegistry> registry) {
  registry_ = std::move(registry);
  for (const CollectionInfo& info : registry_->List()) {
    metrics_->SetCollectionRows(info.schema.name, info.stats.rows,
                                info.stats.live_rows);
  }
  ready_.store(true, std::memory_order_release);
}

CollectionRegistry* VectorSearchService::registry() const {
  return ready_.load(std::memory_order_acquire) ? registry_.get() : nullptr;
}

absl::StatusOr<CollectionRegistry*> VectorSearchService::Ready() const {
  if (!ready_.load(std::memory_order_acquire)) {
    return absl::UnavailableError(
        "server is recovering its collections; retry shortly");
  }
  return registry_.get();
}

void VectorSearchService::StopBatchers() {
  absl::flat_hash_map<std::string, BatcherEntry> batchers;
  {
    absl::MutexLock lock(&batchers_mu_);
    batchers_stopped_ = true;
    batchers.swap(batchers_);
  }
  // Each Stop completes that collection's queued searches first.
  for (auto& [name, entry] : batchers) entry.batcher->Stop();
}

void VectorSearchService::RecordRpc(absl::string_view method, absl::Time start,
                                    absl::StatusCode code) {
  metrics_->ObserveRpc(method, absl::StatusCodeToString(code),
                       absl::ToDoubleSeconds(absl::Now() - start));
}

grpc::ServerUnaryReactor* VectorSearchService::Finish(
    grpc::CallbackServerContext* ctx, absl::string_view method,
    absl::Time start, const absl::Status& status) {
  RecordRpc(method, start, status.code());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// ---- Collections
// -------------------------------------------------------------

grpc::ServerUnaryReactor* VectorSearchService::CreateCollection(
    grpc::CallbackServerContext* ctx, const v1::CreateCollectionRequest* req,
    v1::CreateCollectionResponse* resp) {
  const absl::Time start = absl::Now();
  auto body = [&]() -> absl::Status {
    absl::StatusOr<CollectionRegistry*> registry = Ready();
    if (!registry.ok()) return registry.status();
    PEAKKNN_RETURN_IF_ERROR(
        limits_.CheckName("schema.name", req->schema().name()));
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckDim(req->schema().dim()));
    absl::StatusOr<CollectionSchema> schema = SchemaFromProto(
        req->schema(), CollectionSchema{}.default_recall_target);
    if (!schema.ok()) return schema.status();
    absl::StatusOr<CollectionInfo> info = (*registry)->Create(*schema);
    if (!info.ok()) return info.status();
    InfoToProto(*info, resp->mutable_info());
    metrics_->SetCollectionRows(schema->name, 0, 0);
    return absl::OkStatus();
  };
  return Finish(ctx, "CreateCollection", start, body());
}

grpc::ServerUnaryReactor* VectorSearchService::DropCollection(
    grpc::CallbackServerContext* ctx, const v1::DropCollectionRequest* req,
    v1::DropCollectionResponse*) {
  const absl::Time start = absl::Now();
  auto body = [&]() -> absl::Status {
    absl::StatusOr<CollectionRegistry*> registry = Ready();
    if (!registry.ok()) return registry.status();
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("name", req->name()));
    PEAKKNN_RETURN_IF_ERROR((*registry)->Drop(req->name()));
    ForgetBatcher(req->name());
    metrics_->RemoveCollection(req->name());
    return absl::OkStatus();
  };
  return Finish(ctx, "DropCollection", start, body());
}

grpc::ServerUnaryReactor* VectorSearchService::ListCollections(
    grpc::CallbackServerContext* ctx, const v1::ListCollectionsRequest*,
    v1::ListCollectionsResponse* resp) {
  const absl::Time start = absl::Now();
  auto body = [&]() -> absl::Status {
    absl::StatusOr<CollectionRegistry*> registry = Ready();
    if (!registry.ok()) return registry.status();
    for (const CollectionInfo& info : (*registry)->List()) {
      InfoToProto(info, resp->add_collections());
    }
    return absl::OkStatus();
  };
  return Finish(ctx, "ListCollections", start, body());
}

grpc::ServerUnaryReactor* VectorSearchService::DescribeCollection(
    grpc::CallbackServerContext* ctx, const v1::DescribeCollectionRequest* req,
    v1::DescribeCollectionResponse* resp) {
  const absl::Time start = absl::Now();
  auto body = [&]() -> absl::Status {
    absl::StatusOr<CollectionRegistry*> registry = Ready();
    if (!registry.ok()) return registry.status();
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("name", req->name()));
    absl::StatusOr<CollectionInfo> info = (*registry)->Describe(req->name());
    if (!info.ok()) return info.status();
    InfoToProto(*info, resp->mutable_info());
    return absl::OkStatus();
  };
  return Finish(ctx, "DescribeCollection", start, body());
}

// ---- Search
// ------------------------------------------------------------------

absl::StatusOr<std::shared_ptr<Batcher>> VectorSearchService::BatcherFor(
    const CollectionSchema& schema) {
  absl::MutexLock lock(&batchers_mu_);
  if (batchers_stopped_) {
    return absl::UnavailableError("server is shutting down");
  }
  auto it = batchers_.find(schema.name);
  if (it != batchers_.end() && it->second.dim == schema.dim) {
    return it->second.batcher;
  }
  // New, or the collection was dropped and re-created with another dim (the
  // replaced batcher finishes its queue when its last user lets go).
  Batcher::Options options;
  options.max_batch = config_.max_batch;
  options.max_delay = absl::Microseconds(config_.max_delay_us);
  options.max_queue = config_.max_queue;
  CollectionRegistry* registry = registry_.get();
  auto batcher = std::make_shared<Batcher>(
      schema.name, schema.dim, options,
      [registry, name = schema.name](std::span<const float> queries,
                                     const SearchParams& params) {
        return registry->Search(name, queries, params);
      },
      static_cast<BatcherObserver*>(this));
  batchers_[schema.name] = {schema.dim, batcher};
  return batcher;
}

void VectorSearchService::ForgetBatcher(const std::string& name) {
  std::shared_ptr<Batcher> batcher;
  {
    absl::MutexLock lock(&batchers_mu_);
    auto it = batchers_.find(name);
    if (it == batchers_.end()) return;
    batcher = std::move(it->second.batcher);
    batchers_.erase(it);
  }
  batcher->Stop();
}

absl::Status VectorSearchService::SearchBody(grpc::CallbackServerContext* ctx,
                                             grpc::ServerUnaryReactor* reactor,
                                             const v1::SearchRequest* req,
                                             v1::SearchResponse* resp,
                                             absl::Time start) {
  absl::StatusOr<CollectionRegistry*> registry = Ready();
  if (!registry.ok()) return registry.status();
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", req->collection()));
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckK(req->k()));
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckRecallTarget(req->recall_target()));
  absl::StatusOr<CollectionSchema> schema =
      (*registry)->Schema(req->collection());
  if (!schema.ok()) return schema.status();
  const std::span<const float> queries = SpanOf(req->queries());
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckVectors(
      "queries", queries, schema->dim, -1, limits_.max_queries_per_request,
      "--max_queries_per_request"));
  absl::StatusOr<std::shared_ptr<Batcher>> batcher = BatcherFor(*schema);
  if (!batcher.ok()) return batcher.status();

  SearchJob job;
  job.queries = queries;
  job.num_queries = static_cast<int64_t>(queries.size()) / schema->dim;
  job.k = req->k();
  job.recall_target = req->recall_target() == 0 ? schema->default_recall_target
                                                : req->recall_target();
  job.deadline = DeadlineOf(ctx);
  job.cancelled = [ctx] { return ctx->IsCancelled(); };
  job.done = [this, reactor, resp, start, k = job.k, n = job.num_queries](
                 const absl::Status& status, const SearchOutcome* batch,
                 int64_t first) {
    if (status.ok()) {
      const SearchResults& r = batch->results;
      for (int64_t q = first; q < first + n; ++q) {
        v1::QueryResult* out = resp->add_results();
        const int64_t count = std::min<int64_t>(r.counts[q], k);
        const int64_t base = q * r.k;
        out->mutable_ids()->Add(r.ids.begin() + base,
                                r.ids.begin() + base + count);
        out->mutable_distances()->Add(r.distances.begin() + base,
                                      r.distances.begin() + base + count);
      }
      // The batch's bins, judged at this request's own k.
      resp->set_exact(r.exact);
      resp->set_bins(r.bins);
      resp->set_expected_recall(
          r.exact ? 1.0 : ExpectedRecall(batch->live_rows, k, r.bins));
      resp->set_worst_rank_recall(
          r.exact ? 1.0 : WorstRankRecall(batch->live_rows, k, r.bins));
      search_requests_.fetch_add(1, std::memory_order_relaxed);
      search_queries_.fetch_add(n, std::memory_order_relaxed);
    }
    RecordRpc("Search", start, status.code());
    reactor->Finish(ToGrpcStatus(status));
  };
  return (*batcher)->Submit(std::move(job));
}

grpc::ServerUnaryReactor* VectorSearchService::Search(
    grpc::CallbackServerContext* ctx, const v1::SearchRequest* req,
    v1::SearchResponse* resp) {
  const absl::Time start = absl::Now();
  // DefaultReactor() constructs the reactor anew on every call, so it is
  // called exactly once: a second call after the batcher finished the call
  // would erase that Finish and leave the RPC hanging.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status status = SearchBody(ctx, reactor, req, resp, start);
  // On success the batcher finishes the call (possibly already has).
  if (!status.ok()) {
    RecordRpc("Search", start, status.code());
    reactor->Finish(ToGrpcStatus(status));
  }
  return reactor;
}

void VectorSearchService::OnBatch(const std::string& collection,
                                  const BatchStats& stats) {
  batches_.fetch_add(1, std::memory_order_relaxed);
  metrics_->OnBatch(collection, stats);
}

void VectorSearchService::OnQueueDepth(const std::string& collection,
                                       int64_t depth) {
  metrics_->OnQueueDepth(collection, depth);
}

void VectorSearchService::OnExpired(const std::string& collection,
                                    int64_t requests) {
  metrics_->OnExpired(collection, requests);
}

// ---- Writes
// ------------------------------------------------------------------

absl::StatusOr<WriteResult> VectorSearchService::WriteRows(
    absl::string_view collection, WriteMode mode, std::span<const uint64_t> ids,
    std::span<const float> vectors) {
  absl::StatusOr<CollectionRegistry*> registry = Ready();
  if (!registry.ok()) return registry.status();
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", collection));
  PEAKKNN_RETURN_IF_ERROR(
      limits_.CheckIds("ids", static_cast<int64_t>(ids.size())));
  absl::StatusOr<CollectionSchema> schema = (*registry)->Schema(collection);
  if (!schema.ok()) return schema.status();
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckVectors(
      "vectors", vectors, schema->dim, static_cast<int64_t>(ids.size()),
      limits_.max_rows_per_write, "--max_rows_per_write"));
  absl::StatusOr<WriteResult> result =
      (*registry)->Write(collection, mode, ids, vectors);
  if (!result.ok()) return result.status();
  const std::string name(collection);
  metrics_->AddInsertedRows(name, result->rows);
  metrics_->SetCollectionRows(name, result->stats.rows,
                              result->stats.live_rows);
  inserted_rows_.fetch_add(result->rows, std::memory_order_relaxed);
  return result;
}

// One InsertStream call: read a batch, apply it, ack it, read the next. A
// failed batch is acked with its error and the stream goes on.
class VectorSearchService::InsertReactor final
    : public grpc::ServerBidiReactor<v1::InsertRequest, v1::InsertAck> {
 public:
  explicit InsertReactor(VectorSearchService* service) : service_(service) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or went away): we are done
      FinishWith(absl::OkStatus());
      return;
    }
    ack_.Clear();
    ack_.set_batch_tag(request_.batch_tag());
    if (absl::Status s = Apply(); !s.ok()) {
      ack_.set_code(static_cast<int32_t>(s.code()));
      ack_.set_error(std::string(s.message()));
    }
    StartWrite(&ack_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      FinishWith(absl::CancelledError(
          "InsertStream: the client went away before an ack was sent"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override {
    service_->RecordRpc("InsertStream", start_, code_);
    delete this;
  }

 private:
  absl::Status Apply() {
    if (collection_.empty()) {
      if (request_.collection().empty()) {
        return absl::InvalidArgumentError(
            "collection: required on the first message of an InsertStream");
      }
      collection_ = request_.collection();
    } else if (!request_.collection().empty() &&
               request_.collection() != collection_) {
      return absl::InvalidArgumentError(
          absl::StrCat("collection=\"", request_.collection(),
                       "\": this InsertStream "
                       "writes \"",
                       collection_,
                       "\"; open another stream for another "
                       "collection"));
    }
    absl::StatusOr<WriteResult> result = service_->WriteRows(
        collection_,
        request_.upsert() ? WriteMode::kUpsert : WriteMode::kInsert,
        SpanOf(request_.ids()), SpanOf(request_.vectors()));
    if (!result.ok()) return result.status();
    ack_.set_sequence(result->sequence);
    ack_.set_rows(result->rows);
    return absl::OkStatus();
  }

  void FinishWith(const absl::Status& status) {
    code_ = status.code();
    Finish(ToGrpcStatus(status));
  }

  VectorSearchService* const service_;
  const absl::Time start_ = absl::Now();
  std::string collection_;
  v1::InsertRequest request_;
  v1::InsertAck ack_;
  absl::StatusCode code_ = absl::StatusCode::kOk;
};

grpc::ServerBidiReactor<v1::InsertRequest, v1::InsertAck>*
VectorSearchService::InsertStream(grpc::CallbackServerContext*) {
  return new InsertReactor(this);
}

grpc::ServerUnaryReactor* VectorSearchService::Upsert(
    grpc::CallbackServerContext* ctx, const v1::UpsertRequest* req,
    v1::UpsertResponse* resp) {
  const absl::Time start = absl::Now();
  absl::StatusOr<WriteResult> result =
      WriteRows(req->collection(), WriteMode::kUpsert, SpanOf(req->ids()),
                SpanOf(req->vectors()));
  if (result.ok()) {
    resp->set_sequence(result->sequence);
    resp->set_rows(result->rows);
  }
  return Finish(ctx, "Upsert", start, result.status());
}

grpc::ServerUnaryReactor* VectorSearchService::Delete(
    grpc::CallbackServerContext* ctx, const v1::DeleteRequest* req,
    v1::DeleteResponse* resp) {
  const absl::Time start = absl::Now();
  auto body = [&]() -> absl::Status {
    absl::StatusOr<CollectionRegistry*> registry = Ready();
    if (!registry.ok()) return registry.status();
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", req->collection()));
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckIds("ids", req->ids_size()));
    absl::StatusOr<WriteResult> result =
        (*registry)->Delete(req->collection(), SpanOf(req->ids()));
    if (!result.ok()) return result.status();
    resp->set_sequence(result->sequence);
    resp->set_deleted(result->rows);
    metrics_->SetCollectionRows(req->collection(), result->stats.rows,
                                result->stats.live_rows);
    return absl::OkStatus();
  };
  return Finish(ctx, "Delete", start, body());
}

grpc::ServerUnaryReactor* VectorSearchService::Get(
    grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
    v1::GetResponse* resp) {
  const absl::Time start = absl::Now();
  auto body = [&]() -> absl::Status {
    absl::StatusOr<CollectionRegistry*> registry = Ready();
    if (!registry.ok()) return registry.status();
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", req->collection()));
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckIds("ids", req->ids_size()));
    auto vectors = (*registry)->Get(req->collection(), SpanOf(req->ids()));
    if (!vectors.ok()) return vectors.status();
    for (int i = 0; i < req->ids_size(); ++i) {
      v1::StoredVector* out = resp->add_vectors();
      out->set_id(req->ids(i));
      const auto& v = (*vectors)[i];
      out->set_found(v.has_value());
      if (v.has_value()) out->mutable_values()->Add(v->begin(), v->end());
    }
    return absl::OkStatus();
  };
  return Finish(ctx, "Get", start, body());
}

// ---- Planning and stats
// ------------------------------------------------------

grpc::ServerUnaryReactor* VectorSearchService::PlanRecall(
    grpc::CallbackServerContext* ctx, const v1::PlanRecallRequest* req,
    v1::PlanRecallResponse* resp) {
  const absl::Time start = absl::Now();
  auto body = [&]() -> absl::Status {
    int64_t n = req->n();
    if (!req->collection().empty() && n == 0) {
      absl::StatusOr<CollectionRegistry*> registry = Ready();
      if (!registry.ok()) return registry.status();
      absl::StatusOr<CollectionInfo> info =
          (*registry)->Describe(req->collection());
      if (!info.ok()) return info.status();
      n = info->stats.live_rows;
    }
    if (req->k() < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("k=", req->k(), ": must be >= 1"));
    }
    if (!(req->recall_target() > 0 && req->recall_target() <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "recall_target=", req->recall_target(), ": must be in (0, 1]"));
    }
    const int per_bin =
        req->per_bin() == 0 ? 1 : static_cast<int>(req->per_bin());
    const int shards = req->shards() == 0 ? 1 : static_cast<int>(req->shards());
    absl::StatusOr<RecallPlan> plan =
        peakknn::PlanRecall(n, req->k(), req->recall_target(), per_bin, shards);
    if (!plan.ok()) {
      return absl::InvalidArgumentError(plan.status().message());
    }
    resp->set_exact(plan->exact);
    resp->set_bins(plan->bins);
    resp->set_bins_per_shard(plan->bins_per_shard);
    resp->set_per_bin(static_cast<uint32_t>(plan->per_bin));
    resp->set_expected_recall(plan->expected_recall);
    resp->set_worst_rank_recall(plan->worst_rank_recall);
    resp->set_conservative_bins(plan->conservative_bins);
    resp->set_n(n);
    return absl::OkStatus();
  };
  return Finish(ctx, "PlanRecall", start, body());
}

grpc::ServerUnaryReactor* VectorSearchService::GetStats(
    grpc::CallbackServerContext* ctx, const v1::GetStatsRequest*,
    v1::GetStatsResponse* resp) {
  const absl::Time start = absl::Now();
  auto body = [&]() -> absl::Status {
    absl::StatusOr<CollectionRegistry*> registry = Ready();
    if (!registry.ok()) return registry.status();
    resp->set_version(PEAKKNN_VERSION);
    resp->set_backend(backend_name_);
    resp->set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - started_));
    for (const CollectionInfo& info : (*registry)->List()) {
      InfoToProto(info, resp->add_collections());
    }
    resp->set_search_requests(search_requests_.load());
    resp->set_search_queries(search_queries_.load());
    resp->set_batches(batches_.load());
    resp->set_inserted_rows(inserted_rows_.load());
    resp->set_max_dim(static_cast<uint32_t>(config_.max_dim));
    resp->set_max_k(static_cast<uint32_t>(config_.max_k));
    resp->set_max_queries_per_request(
        static_cast<uint32_t>(config_.max_queries_per_request));
    resp->set_max_message_bytes(
        static_cast<uint64_t>(config_.max_message_bytes));
    return absl::OkStatus();
  };
  return Finish(ctx, "GetStats", start, body());
}

}  // namespace peakknn::server
