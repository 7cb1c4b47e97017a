#include "client/client.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/channel_credentials.h"
#include "client/insert_batch.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace peakknn::client {
namespace {

template <typename T>
void Assign(google::protobuf::RepeatedField<T>* field, std::span<const T> v) {
  field->Reserve(static_cast<int>(v.size()));
  field->Add(v.begin(), v.end());
}

}  // namespace

Client::Client(const ClientOptions& options,
               std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_(std::move(channel)),
      stub_(v1::VectorSearch::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const ClientOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentialsFor(options);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, *credentials, args);
  if (!channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + options.connect_timeout))) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach a peakknn server at ", options.target, " over ",
        UsesTls(options) ? "TLS" : "plaintext", " within ",
        absl::FormatDuration(options.connect_timeout),
        " (is peakknn-server running, and does it speak ",
        UsesTls(options) ? "TLS with a certificate these roots trust"
                         : "plaintext",
        "? set --server or PEAKKNN_SERVER)"));
  }
  return std::unique_ptr<Client>(new Client(options, std::move(channel)));
}

v1::ConsistencyToken MergeTokens(const v1::ConsistencyToken& a,
                                 const v1::ConsistencyToken& b) {
  const bool a_longer = a.shard_sequences_size() >= b.shard_sequences_size();
  v1::ConsistencyToken merged = a_longer ? a : b;
  const v1::ConsistencyToken& shorter = a_longer ? b : a;
  for (int i = 0; i < shorter.shard_sequences_size(); ++i) {
    merged.set_shard_sequences(
        i, std::max(merged.shard_sequences(i), shorter.shard_sequences(i)));
  }
  return merged;
}

void Client::Authenticate(grpc::ClientContext* ctx) const {
  if (!options_.token.empty()) {
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
}

std::unique_ptr<grpc::ClientContext> Client::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
  Authenticate(ctx.get());
  return ctx;
}

absl::Status Client::Convert(const grpc::Status& status,
                             absl::string_view method) const {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (code == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(
        absl::StrCat(method, ": peakknn server at ", options_.target,
                     " unavailable: ", status.error_message()));
  }
  return absl::Status(code, status.error_message());
}

absl::StatusOr<v1::CollectionInfo> Client::CreateCollection(
    const v1::CollectionSchema& schema) {
  v1::CreateCollectionRequest req;
  *req.mutable_schema() = schema;
  v1::CreateCollectionResponse resp;
  auto ctx = Context();
  grpc::Status s = stub_->CreateCollection(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s, "CreateCollection");
  return resp.info();
}

absl::Status Client::DropCollection(absl::string_view name) {
  v1::DropCollectionRequest req;
  req.set_name(std::string(name));
  v1::DropCollectionResponse resp;
  auto ctx = Context();
  return Convert(stub_->DropCollection(ctx.get(), req, &resp),
                 "DropCollection");
}

absl::StatusOr<std::vector<v1::CollectionInfo>> Client::ListCollections() {
  v1::ListCollectionsResponse resp;
  auto ctx = Context();
  grpc::Status s =
      stub_->ListCollections(ctx.get(), v1::ListCollectionsRequest(), &resp);
  if (!s.ok()) return Convert(s, "ListCollections");
  return std::vector<v1::CollectionInfo>(resp.collections().begin(),
                                         resp.collections().end());
}

absl::StatusOr<v1::CollectionInfo> Client::DescribeCollection(
    absl::string_view name) {
  v1::DescribeCollectionRequest req;
  req.set_name(std::string(name));
  v1::DescribeCollectionResponse resp;
  auto ctx = Context();
  grpc::Status s = stub_->DescribeCollection(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s, "DescribeCollection");
  return resp.info();
}

absl::StatusOr<v1::SearchResponse> Client::Search(
    absl::string_view collection, std::span<const float> queries, int64_t k,
    double recall_target) {
  v1::SearchRequest req;
  req.set_collection(std::string(collection));
  Assign(req.mutable_queries(), queries);
  req.set_k(static_cast<uint32_t>(std::clamp<int64_t>(k, 0, UINT32_MAX)));
  req.set_recall_target(recall_target);
  v1::SearchResponse resp;
  auto ctx = Context();
  grpc::Status s = stub_->Search(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s, "Search");
  return resp;
}

absl::StatusOr<SearchAllResult> Client::SearchAll(
    absl::string_view collection, std::span<const float> queries, int64_t dim,
    int64_t k, double recall_target, int64_t per_request) {
  if (dim < 1 || queries.size() % dim != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("SearchAll: ", queries.size(),
                     " floats is not a whole number of vectors of dim ", dim));
  }
  const int64_t n = static_cast<int64_t>(queries.size()) / dim;
  SearchAllResult out;
  out.exact = true;
  for (int64_t first = 0; first < n; first += per_request) {
    const int64_t count = std::min(per_request, n - first);
    absl::StatusOr<v1::SearchResponse> resp =
        Search(collection, queries.subspan(first * dim, count * dim), k,
               recall_target);
    if (!resp.ok()) return resp.status();
    for (const v1::QueryResult& r : resp->results()) {
      out.ids.emplace_back(r.ids().begin(), r.ids().end());
      out.distances.emplace_back(r.distances().begin(), r.distances().end());
    }
    out.expected_recall =
        first == 0 ? resp->expected_recall()
                   : std::min(out.expected_recall, resp->expected_recall());
    out.bins = resp->bins();
    out.exact = out.exact && resp->exact();
  }
  return out;
}

absl::StatusOr<v1::UpsertResponse> Client::Upsert(
    absl::string_view collection, std::span<const uint64_t> ids,
    std::span<const float> vectors) {
  v1::UpsertRequest req;
  req.set_collection(std::string(collection));
  Assign(req.mutable_ids(), ids);
  Assign(req.mutable_vectors(), vectors);
  v1::UpsertResponse resp;
  auto ctx = Context();
  grpc::Status s = stub_->Upsert(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s, "Upsert");
  return resp;
}

absl::StatusOr<v1::DeleteResponse> Client::Delete(
    absl::string_view collection, std::span<const uint64_t> ids) {
  v1::DeleteRequest req;
  req.set_collection(std::string(collection));
  Assign(req.mutable_ids(), ids);
  v1::DeleteResponse resp;
  auto ctx = Context();
  grpc::Status s = stub_->Delete(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s, "Delete");
  return resp;
}

absl::StatusOr<v1::GetResponse> Client::Get(absl::string_view collection,
                                            std::span<const uint64_t> ids) {
  v1::GetRequest req;
  req.set_collection(std::string(collection));
  Assign(req.mutable_ids(), ids);
  v1::GetResponse resp;
  auto ctx = Context();
  grpc::Status s = stub_->Get(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s, "Get");
  return resp;
}

absl::StatusOr<v1::PlanRecallResponse> Client::PlanRecall(
    const v1::PlanRecallRequest& request) {
  v1::PlanRecallResponse resp;
  auto ctx = Context();
  grpc::Status s = stub_->PlanRecall(ctx.get(), request, &resp);
  if (!s.ok()) return Convert(s, "PlanRecall");
  return resp;
}

absl::StatusOr<v1::GetStatsResponse> Client::GetStats() {
  v1::GetStatsResponse resp;
  auto ctx = Context();
  grpc::Status s = stub_->GetStats(ctx.get(), v1::GetStatsRequest(), &resp);
  if (!s.ok()) return Convert(s, "GetStats");
  return resp;
}

absl::StatusOr<InsertSummary> Client::InsertAll(absl::string_view collection,
                                                std::span<const uint64_t> ids,
                                                std::span<const float> vectors,
                                                const InsertOptions& options,
                                                const ProgressFn& progress) {
  const int64_t rows = static_cast<int64_t>(ids.size());
  if (rows == 0 || vectors.size() % ids.size() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("InsertAll: ", vectors.size(), " floats for ", rows,
                     " ids is not a whole number of vectors per id"));
  }
  if (options.batch_rows < 1 || options.window < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("InsertAll: batch_rows=", options.batch_rows,
                     " and window=", options.window, " must be >= 1"));
  }
  const int64_t dim = static_cast<int64_t>(vectors.size()) / rows;
  const int64_t batches = (rows + options.batch_rows - 1) / options.batch_rows;

  grpc::ClientContext ctx;  // no deadline: a stream may run for hours
  Authenticate(&ctx);
  // InsertBatch sends the vectors from `vectors` in place (no copy into a
  // message); they outlive the stream, which ends before this returns.
  std::unique_ptr<grpc::ClientReaderWriter<InsertBatch, v1::InsertAck>> stream =
      OpenInsertStream(channel_.get(), &ctx);

  // The reader thread consumes acks in order and opens the window.
  std::mutex mu;
  std::condition_variable acked_cv;  // signalled on each ack and at the end
  int64_t acked_batches = 0;         // guarded by mu
  absl::Status failure;              // guarded by mu: first rejected batch
  bool stream_ended = false;         // guarded by mu: no more acks will come
  InsertSummary summary;             // guarded by mu
  std::thread reader([&] {
    v1::InsertAck ack;
    while (stream->Read(&ack)) {
      std::lock_guard lock(mu);
      const int64_t b = static_cast<int64_t>(ack.batch_tag());
      if (ack.code() != 0 && failure.ok()) {
        const int64_t begin = b * options.batch_rows;
        failure = absl::Status(
            static_cast<absl::StatusCode>(ack.code()),
            absl::StrCat("batch ", b, " (rows ", begin, "..",
                         std::min(rows, begin + options.batch_rows) - 1,
                         "): ", ack.error()));
      }
      if (ack.code() == 0) {
        summary.rows += ack.rows();
        summary.batches += 1;
        summary.last_sequence = ack.sequence();
        if (progress) progress(summary.rows, rows);
      }
      ++acked_batches;
      acked_cv.notify_one();
    }
    std::lock_guard lock(mu);
    stream_ended = true;
    acked_cv.notify_one();
  });

  InsertBatch batch;
  batch.collection = std::string(collection);
  batch.upsert = options.upsert;
  for (int64_t b = 0; b < batches; ++b) {
    {
      std::unique_lock lock(mu);
      auto window_open = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return b - acked_batches < options.window || !failure.ok() ||
               stream_ended;
      };
      acked_cv.wait(lock, window_open);
      if (!failure.ok() || stream_ended) break;  // Finish says why
    }
    const int64_t begin = b * options.batch_rows;
    const int64_t count = std::min(options.batch_rows, rows - begin);
    batch.batch_tag = static_cast<uint64_t>(b);
    batch.ids = ids.subspan(begin, count);
    batch.vectors = vectors.subspan(begin * dim, count * dim);
    if (!stream->Write(batch)) break;  // the stream broke; Finish says why
    if (b == 0) batch.collection.clear();
  }
  stream->WritesDone();
  reader.join();
  const grpc::Status finish = stream->Finish();
  std::lock_guard lock(mu);
  if (!failure.ok()) return failure;
  if (!finish.ok()) return Convert(finish, "InsertStream");
  if (summary.rows != rows) {
    return absl::DataLossError(absl::StrCat("InsertStream ended after ",
                                            summary.rows, " of ", rows,
                                            " rows were acknowledged"));
  }
  return summary;
}

}  // namespace peakknn::client
