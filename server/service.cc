#include "server/service.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/string_view.h"
#include "engine/recall_calculator.h"
#include "engine/vector_checks.h"
#include "server/convert.h"

namespace peakknn::server {
namespace {

template <typename T>
std::span<const T> SpanOf(const google::protobuf::RepeatedField<T>& field) {
  return {field.data(), static_cast<size_t>(field.size())};
}

// Parsed InsertRequests for reuse by one InsertStream. The store holds each
// request it was handed until the batch is done; then the request comes back
// here, cleared but keeping its buffers, so a steady stream parses into
// memory it already has (a fresh 1024 x 128 batch is 512 KiB of new pages,
// 128 page faults). Keeps at most kMaxFree requests; the pool lives until
// the stream and the store have let go of every request.
class RequestPool : public std::enable_shared_from_this<RequestPool> {
 public:
  static constexpr size_t kMaxFree = 16;

  std::shared_ptr<v1::InsertRequest> Get() {
    std::unique_ptr<v1::InsertRequest> request;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        request = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (request == nullptr) request = std::make_unique<v1::InsertRequest>();
    return std::shared_ptr<v1::InsertRequest>(
        request.release(), [pool = shared_from_this()](v1::InsertRequest* r) {
          pool->Put(std::unique_ptr<v1::InsertRequest>(r));
        });
  }

 private:
  void Put(std::unique_ptr<v1::InsertRequest> request) {
    request->Clear();
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < kMaxFree) free_.push_back(std::move(request));
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<v1::InsertRequest>> free_ ABSL_GUARDED_BY(mu_);
};

absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

}  // namespace

VectorSearchService::VectorSearchService(const ServerConfig& config,
                                         ServiceCore* core, Metrics* metrics)
    : config_(config),
      limits_(RequestLimits::From(config)),
      metrics_(metrics),
      core_(core),
      write_options_{config.durability} {}

VectorSearchService::~VectorSearchService() { StopBatchers(); }

void VectorSearchService::PublishCollectionRows() {
  for (const CollectionInfo& info : ListInfos()) {
    metrics_->SetCollectionRows(info.schema.name, info.rows, info.live_rows);
  }
}

absl::StatusOr<std::shared_ptr<ServedCollection>> VectorSearchService::Open(
    absl::string_view name) const {
  return core_->OpenCollection(SV(name));
}

std::vector<CollectionInfo> VectorSearchService::ListInfos() const {
  absl::StatusOr<std::vector<CollectionInfo>> infos = core_->ListCollections();
  return infos.ok() ? *std::move(infos) : std::vector<CollectionInfo>();
}

void VectorSearchService::PublishRows(const std::string& name,
                                      const ServedCollection& collection) {
  const RowCounts counts = collection.row_counts();
  metrics_->SetCollectionRows(name, counts.rows, counts.live_rows);
}

void VectorSearchService::StopBatchers() {
  absl::flat_hash_map<std::string, BatcherEntry> batchers;
  {
    std::lock_guard<std::mutex> lock(batchers_mu_);
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
    PEAKKNN_RETURN_IF_ERROR(core_->Ready());
    PEAKKNN_RETURN_IF_ERROR(
        limits_.CheckName("schema.name", req->schema().name()));
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckDim(req->schema().dim()));
    absl::StatusOr<CollectionSchema> schema = SchemaFromProto(
        req->schema(), CollectionSchema{}.default_recall_target);
    if (!schema.ok()) return schema.status();
    PEAKKNN_RETURN_IF_ERROR(
        core_->CreateCollection(*schema, Durability::kDefault));
    absl::StatusOr<CollectionInfo> info =
        core_->DescribeCollection(schema->name);
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
    PEAKKNN_RETURN_IF_ERROR(core_->Ready());
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("name", req->name()));
    PEAKKNN_RETURN_IF_ERROR(core_->DropCollection(req->name()));
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
    PEAKKNN_RETURN_IF_ERROR(core_->Ready());
    for (const CollectionInfo& info : ListInfos()) {
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
    PEAKKNN_RETURN_IF_ERROR(core_->Ready());
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("name", req->name()));
    absl::StatusOr<CollectionInfo> info =
        core_->DescribeCollection(req->name());
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
  std::lock_guard<std::mutex> lock(batchers_mu_);
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
  // Looked up by name for every batch: a collection dropped and re-created
  // with the same dim keeps this batcher and searches the new one.
  auto batcher = std::make_shared<Batcher>(
      schema.name, schema.dim, options,
      [core = core_, name = schema.name](
          std::span<const float> queries,
          const SearchParams& params) -> absl::StatusOr<SearchResults> {
        absl::StatusOr<std::shared_ptr<ServedCollection>> collection =
            core->OpenCollection(name);
        if (!collection.ok()) return collection.status();
        return (*collection)->Search(queries, params);
      },
      static_cast<BatcherObserver*>(this));
  batchers_[schema.name] = {schema.dim, batcher};
  return batcher;
}

void VectorSearchService::ForgetBatcher(const std::string& name) {
  std::shared_ptr<Batcher> batcher;
  {
    std::lock_guard<std::mutex> lock(batchers_mu_);
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
  PEAKKNN_RETURN_IF_ERROR(core_->Ready());
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", req->collection()));
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckK(req->k()));
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckRecallTarget(req->recall_target()));
  absl::StatusOr<std::shared_ptr<ServedCollection>> collection =
      Open(req->collection());
  if (!collection.ok()) return collection.status();
  const CollectionSchema* schema = &(*collection)->schema();
  const std::span<const float> queries = SpanOf(req->queries());
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckVectors(
      "queries", queries, schema->dim, -1, limits_.max_queries_per_request,
      "--max_queries_per_request"));
  PEAKKNN_RETURN_IF_ERROR(CheckVectors(
      *schema, queries, static_cast<int64_t>(queries.size()) / schema->dim,
      "queries"));
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
                 const absl::Status& status, const SearchResults* batch,
                 int64_t first) {
    if (status.ok()) {
      const SearchResults& r = *batch;
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
          r.exact ? 1.0 : ExpectedRecall(r.live_rows, k, r.bins));
      resp->set_worst_rank_recall(
          r.exact ? 1.0 : WorstRankRecall(r.live_rows, k, r.bins));
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

int64_t VectorSearchService::BackendDeviceMemoryBytes() const {
  return core_->Stats().backend_device_memory_bytes;
}

void VectorSearchService::OnBatch(const std::string& collection,
                                  const BatchStats& stats) {
  batches_.fetch_add(1, std::memory_order_relaxed);
  metrics_->OnBatch(collection, stats);
  // Workspaces grow with the batch shapes searched.
  metrics_->SetBackendDeviceMemory(BackendDeviceMemoryBytes());
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

absl::StatusOr<std::shared_ptr<ServedCollection>>
VectorSearchService::CheckWrite(absl::string_view collection,
                                std::span<const uint64_t> ids,
                                std::span<const float> vectors) {
  PEAKKNN_RETURN_IF_ERROR(core_->Ready());
  PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", collection));
  PEAKKNN_RETURN_IF_ERROR(
      limits_.CheckIds("ids", static_cast<int64_t>(ids.size())));
  absl::StatusOr<std::shared_ptr<ServedCollection>> handle = Open(collection);
  if (!handle.ok()) return handle.status();
  PEAKKNN_RETURN_IF_ERROR(
      limits_.CheckVectors("vectors", vectors, (*handle)->schema().dim,
                           static_cast<int64_t>(ids.size()),
                           limits_.max_rows_per_write, "--max_rows_per_write"));
  return handle;
}

void VectorSearchService::OnWritten(const std::string& name,
                                    const ServedCollection& collection,
                                    int64_t rows) {
  metrics_->AddInsertedRows(name, rows);
  PublishRows(name, collection);
  // Row mirrors grow as writes reach the device.
  metrics_->SetBackendDeviceMemory(BackendDeviceMemoryBytes());
  inserted_rows_.fetch_add(rows, std::memory_order_relaxed);
}

// One InsertStream call, pipelined for group commit: each batch read is
// validated and handed to CollectionManager::WriteAsync, and the next read
// starts while it commits: a stream keeps up to kMaxPipelined batches (and
// about kMaxPipelinedBytes) in the store at once, so while one group is
// being fsynced the next group fills, and batches of every stream share a
// log append and an fsync. Acks go out in stream order, each once
// its batch is acknowledged by the store (durable per --durability and
// visible), with the batch's sequence number; a failed batch is acked with
// its own error and the stream goes on.
//
// State lives under mu_; Step() decides the next gRPC operations under the
// lock and starts them after releasing it. Invariants: at most one read and
// one write outstanding (gRPC's rule); request_ is only touched by the read
// in progress, and each batch is read into its own request (from pool_) that
// the store then holds until its acknowledgement (it logs and applies the
// vectors in place, no copy); one thread at a time submits, in stream order
// (SubmitInOrder); Finish is called once, only when no read, no write, no
// submitter and no store callback (in_flight_) is outstanding, so OnDone may
// delete this.
class VectorSearchService::InsertReactor final
    : public grpc::ServerBidiReactor<v1::InsertRequest, v1::InsertAck> {
 public:
  // Batches admitted but not yet acked, and their payload bytes (ids and
  // vectors): bounds a stream's memory (the store holds each batch's request
  // until it is acked) while deep enough that admission overlaps the fsync of
  // the previous group. The byte bound may be passed by one batch (a batch's
  // size is known once it is read).
  static constexpr size_t kMaxPipelined = 64;
  static constexpr int64_t kMaxPipelinedBytes = int64_t{64} << 20;

  explicit InsertReactor(VectorSearchService* service) : service_(service) {
    reading_ = true;
    StartRead(request_.get());
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or went away)
      std::unique_lock<std::mutex> lock(mu_);
      reading_ = false;
      reads_done_ = true;
      Step(lock);
      return;
    }
    bool submitter;
    {
      std::unique_lock<std::mutex> lock(mu_);
      Slot* slot = &slots_.emplace_back();
      slot->ack.set_batch_tag(request_->batch_tag());
      slot->bytes = static_cast<int64_t>(request_->ids_size()) * 8 +
                    static_cast<int64_t>(request_->vectors_size()) * 4;
      pipelined_bytes_ += slot->bytes;
      ++in_flight_;
      unsubmitted_.push_back({slot, std::move(request_)});
      request_ = pool_->Get();
      submitter = !submitting_;
      submitting_ = true;
      reading_ = false;
      Step(lock);  // the next read starts now, before this batch is submitted
    }
    if (submitter) SubmitInOrder();
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) client_gone_ = true;
    Step(lock);
  }

  void OnDone() override {
    service_->RecordRpc("InsertStream", start_, code_);
    delete this;
  }

 private:
  struct Slot {
    v1::InsertAck ack;
    int64_t bytes = 0;   // payload, counted in pipelined_bytes_
    bool ready = false;  // outcome known
  };
  struct Unsubmitted {
    Slot* slot;
    std::shared_ptr<v1::InsertRequest> request;
  };

  // Hands read batches to the store in stream order. The next read starts
  // before a batch is submitted (so the transport keeps receiving while
  // this thread validates and logs), and its OnReadDone may run on another
  // thread meanwhile: whichever thread finds no submitter running becomes
  // it and drains unsubmitted_; the others only queue.
  void SubmitInOrder() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!unsubmitted_.empty()) {
      Unsubmitted next = std::move(unsubmitted_.front());
      unsubmitted_.pop_front();
      lock.unlock();
      Submit(next.slot, std::move(next.request));
      lock.lock();
    }
    submitting_ = false;
    Step(lock);  // may Finish: nothing touches the reactor after this
  }

  // Validates `request` and hands it to the store (which holds it until the
  // batch is done); Complete(slot) runs exactly once, here or on the
  // collection's commit thread. Called by the submitter only.
  void Submit(Slot* slot, std::shared_ptr<v1::InsertRequest> request) {
    absl::Status status = CheckCollectionName(*request);
    absl::StatusOr<std::shared_ptr<ServedCollection>> collection;
    if (status.ok()) {
      collection = service_->CheckWrite(collection_, SpanOf(request->ids()),
                                        SpanOf(request->vectors()));
      status = collection.status();
    }
    if (!status.ok()) {
      Complete(slot, status);
      return;
    }
    ServedCollection& target = **collection;
    target.WriteAsync(
        request->upsert() ? WriteMode::kUpsert : WriteMode::kInsert,
        SpanOf(request->ids()), SpanOf(request->vectors()),
        service_->write_options_,
        [this, slot, name = collection_,
         handle = *std::move(collection)](absl::StatusOr<WriteAck> ack) {
          if (ack.ok()) service_->OnWritten(name, *handle, ack->rows);
          Complete(slot, std::move(ack));
        },
        request);
  }

  absl::Status CheckCollectionName(const v1::InsertRequest& request) {
    if (collection_.empty()) {
      if (request.collection().empty()) {
        return absl::InvalidArgumentError(
            "collection: required on the first message of an InsertStream");
      }
      collection_ = request.collection();
    } else if (!request.collection().empty() &&
               request.collection() != collection_) {
      return absl::InvalidArgumentError(
          absl::StrCat("collection=\"", request.collection(),
                       "\": this InsertStream writes \"", collection_,
                       "\"; open another stream for another collection"));
    }
    return absl::OkStatus();
  }

  void Complete(Slot* slot, const absl::StatusOr<WriteAck>& result) {
    std::unique_lock<std::mutex> lock(mu_);
    if (result.ok()) {
      slot->ack.set_sequence(result->sequence);
      slot->ack.set_rows(result->rows);
      slot->ack.set_durability(DurabilityToProto(result->durability));
    } else {
      slot->ack.set_code(static_cast<int32_t>(result.status().code()));
      slot->ack.set_error(std::string(result.status().message()));
    }
    slot->ready = true;
    --in_flight_;
    Step(lock);
  }

  // Starts whatever can start now: the next ack in order, the next read
  // (while the pipeline has room), or Finish.
  void Step(std::unique_lock<std::mutex>& lock) {
    bool write = false;
    bool read = false;
    bool finish = false;
    grpc::Status status = grpc::Status::OK;
    if (!finished_ && !client_gone_) {
      if (!writing_ && !slots_.empty() && slots_.front().ready) {
        sending_ = std::move(slots_.front().ack);
        pipelined_bytes_ -= slots_.front().bytes;
        slots_.pop_front();
        writing_ = write = true;
      }
      if (!reading_ && !reads_done_ && slots_.size() < kMaxPipelined &&
          pipelined_bytes_ < kMaxPipelinedBytes) {
        reading_ = read = true;
      }
    }
    if (!finished_ && !reading_ && !writing_ && !submitting_ &&
        in_flight_ == 0 && (client_gone_ || (reads_done_ && slots_.empty()))) {
      finished_ = finish = true;
      if (client_gone_) {
        const absl::Status gone = absl::CancelledError(
            "InsertStream: the client went away before every ack was sent");
        code_ = gone.code();
        status = ToGrpcStatus(gone);
      }
    }
    lock.unlock();
    if (write) StartWrite(&sending_);
    if (read) StartRead(request_.get());
    if (finish) Finish(status);
  }

  VectorSearchService* const service_;
  const absl::Time start_ = absl::Now();
  std::string collection_;  // set by the first batch that names one; only
                            // the submitter touches it
  const std::shared_ptr<RequestPool> pool_ = std::make_shared<RequestPool>();
  std::shared_ptr<v1::InsertRequest> request_ = pool_->Get();  // being read
  v1::InsertAck sending_;  // the ack being written

  std::mutex mu_;
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);  // unacked, in stream order
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;       // store callbacks not yet run
  int64_t pipelined_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // of slots_
  // Read, not yet handed to the store, in stream order.
  std::deque<Unsubmitted> unsubmitted_ ABSL_GUARDED_BY(mu_);
  bool submitting_ ABSL_GUARDED_BY(mu_) = false;  // a thread runs SubmitInOrder
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool client_gone_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::StatusCode code_ = absl::StatusCode::kOk;  // written before Finish
};

grpc::ServerBidiReactor<v1::InsertRequest, v1::InsertAck>*
VectorSearchService::InsertStream(grpc::CallbackServerContext*) {
  return new InsertReactor(this);
}

// Unary writes complete asynchronously: the handler validates and hands the
// batch to the store, and the store's acknowledgement (on the collection's
// commit thread, after the group's fsync) fills the response and finishes
// the call. No gRPC thread waits out an fsync, and concurrent unary writes
// share the group commit like stream batches do. req and resp stay valid
// until Finish, which runs only in the store's callback, so the store may
// read req's vectors in place (an owner that owns nothing, only marks them
// as staying valid).
grpc::ServerUnaryReactor* VectorSearchService::Upsert(
    grpc::CallbackServerContext* ctx, const v1::UpsertRequest* req,
    v1::UpsertResponse* resp) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::shared_ptr<ServedCollection>> collection =
      CheckWrite(req->collection(), SpanOf(req->ids()), SpanOf(req->vectors()));
  if (!collection.ok()) {
    return Finish(ctx, "Upsert", start, collection.status());
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  ServedCollection& target = **collection;
  target.WriteAsync(
      WriteMode::kUpsert, SpanOf(req->ids()), SpanOf(req->vectors()),
      write_options_,
      [this, reactor, req, resp, start,
       handle = *std::move(collection)](absl::StatusOr<WriteAck> ack) {
        if (ack.ok()) {
          resp->set_sequence(ack->sequence);
          resp->set_rows(ack->rows);
          resp->set_durability(DurabilityToProto(ack->durability));
          OnWritten(req->collection(), *handle, ack->rows);
        }
        RecordRpc("Upsert", start, ack.status().code());
        reactor->Finish(ToGrpcStatus(ack.status()));
      },
      std::shared_ptr<const void>(std::shared_ptr<const void>(), req));
  return reactor;
}

grpc::ServerUnaryReactor* VectorSearchService::Delete(
    grpc::CallbackServerContext* ctx, const v1::DeleteRequest* req,
    v1::DeleteResponse* resp) {
  const absl::Time start = absl::Now();
  auto check = [&]() -> absl::StatusOr<std::shared_ptr<ServedCollection>> {
    PEAKKNN_RETURN_IF_ERROR(core_->Ready());
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", req->collection()));
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckIds("ids", req->ids_size()));
    return Open(req->collection());
  };
  absl::StatusOr<std::shared_ptr<ServedCollection>> collection = check();
  if (!collection.ok()) {
    return Finish(ctx, "Delete", start, collection.status());
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  ServedCollection& target = **collection;
  target.DeleteAsync(
      SpanOf(req->ids()), write_options_,
      [this, reactor, req, resp, start,
       handle = *std::move(collection)](absl::StatusOr<WriteAck> ack) {
        if (ack.ok()) {
          resp->set_sequence(ack->sequence);
          resp->set_deleted(ack->rows);
          resp->set_durability(DurabilityToProto(ack->durability));
          PublishRows(req->collection(), *handle);
        }
        RecordRpc("Delete", start, ack.status().code());
        reactor->Finish(ToGrpcStatus(ack.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* VectorSearchService::Get(
    grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
    v1::GetResponse* resp) {
  const absl::Time start = absl::Now();
  auto body = [&]() -> absl::Status {
    PEAKKNN_RETURN_IF_ERROR(core_->Ready());
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckName("collection", req->collection()));
    PEAKKNN_RETURN_IF_ERROR(limits_.CheckIds("ids", req->ids_size()));
    absl::StatusOr<std::shared_ptr<ServedCollection>> collection =
        Open(req->collection());
    if (!collection.ok()) return collection.status();
    auto vectors = (*collection)->Get(SpanOf(req->ids()));
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
      absl::StatusOr<std::shared_ptr<ServedCollection>> collection =
          Open(req->collection());
      if (!collection.ok()) return collection.status();
      n = (*collection)->row_counts().live_rows;
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
    PEAKKNN_RETURN_IF_ERROR(core_->Ready());
    resp->set_version(PEAKKNN_VERSION);
    resp->set_backend(core_->Stats().backend);
    resp->set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - started_));
    for (const CollectionInfo& info : ListInfos()) {
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
    resp->set_backend_device_memory_bytes(
        static_cast<uint64_t>(BackendDeviceMemoryBytes()));
    return absl::OkStatus();
  };
  return Finish(ctx, "GetStats", start, body());
}

}  // namespace peakknn::server
