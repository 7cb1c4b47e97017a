// Fuzz target: a request's way from wire bytes to the engine
// (server/convert.h, server/request_limits.h, engine/vector_checks.h,
// engine/collection.h). The input is one request message's bytes; it goes
// through the steps server/service.cc, server/write_admission.cc and
// server/insert_stream.cc take, in their order, with the default limits
// (ServerConfig), against an engine Collection standing in for the core's
// (no gRPC server, no store), and the response is built and serialized.
//
// Input layout: byte 0 picks the method (modulo 7): CreateCollection,
// Search, an InsertStream batch (InsertRequest), Upsert, Delete, Get,
// PlanRecall. The rest is the request's wire bytes.
//
// The collections a request can name exist afresh for every input, so an
// input's outcome does not depend on the ones before it: "l2", "ip",
// "cosine" (f32) and the same with "_bf16" (bf16), dim 8, ids 1 to 24.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "base/status_macros.h"
#include "base/string_view.h"
#include "engine/collection.h"
#include "engine/recall_calculator.h"
#include "engine/vector_checks.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "server/config.h"
#include "server/convert.h"
#include "server/request_limits.h"
#include "tests/fuzz/fuzz_env.h"

namespace peakknn::fuzz {
namespace {

using server::RequestLimits;
using server::SpanOf;

constexpr int kDim = 8;
constexpr uint64_t kRows = 24;

const RequestLimits& Limits() {
  static const RequestLimits limits = [] {
    // Protobuf logs every string field that is not UTF-8 (then the parse
    // fails, which is what is tested); at thousands of inputs a second the
    // log is the bottleneck.
    google::protobuf::SetLogHandler(nullptr);
    return RequestLimits::From(server::ServerConfig{});
  }();
  return limits;
}

// The collection `name` names, made afresh; NOT_FOUND for other names, as
// the core answers.
absl::StatusOr<std::unique_ptr<Collection>> Open(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "l2", "ip", "cosine", "", "l2_bf16", "ip_bf16", "cosine_bf16"};
  for (uint8_t selector = 0; selector < std::size(kNames); ++selector) {
    if (kNames[selector].empty() || name != kNames[selector]) continue;
    CollectionSchema schema = FuzzSchema(selector, kDim);
    schema.name = std::string(name);
    CollectionOptions options;
    options.block_rows = 16;
    PEAKKNN_ASSIGN_OR_RETURN(std::unique_ptr<Collection> c,
                             Collection::Create(schema, options));
    std::vector<uint64_t> ids;
    std::vector<float> vectors;
    for (uint64_t id = 1; id <= kRows; ++id) {
      ids.push_back(id);
      for (int d = 0; d < kDim; ++d) {
        vectors.push_back(static_cast<float>((id * 7 + d * 3) % 11) - 5.0f);
      }
    }
    PEAKKNN_RETURN_IF_ERROR(c->Write(WriteMode::kInsert, ids, vectors));
    return c;
  }
  return absl::NotFoundError("no such collection");
}

// Parses `bytes` into `request` as the service does (unary_call.h).
absl::Status Parse(std::string_view bytes, google::protobuf::Message* request) {
  grpc::Slice slice(bytes.data(), bytes.size());
  const grpc::ByteBuffer buffer(&slice, 1);
  return server::ParseMessage(buffer, request);
}

absl::Status Finish(const google::protobuf::Message& response) {
  grpc::ByteBuffer bytes;
  return server::SerializeMessage(response, &bytes);
}

absl::Status CreateCollection(std::string_view bytes) {
  v1::CreateCollectionRequest req;
  PEAKKNN_RETURN_IF_ERROR(Parse(bytes, &req));
  PEAKKNN_RETURN_IF_ERROR(
      Limits().CheckName("schema.name", req.schema().name()));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckDim(req.schema().dim()));
  PEAKKNN_ASSIGN_OR_RETURN(
      const CollectionSchema schema,
      server::SchemaFromProto(req.schema(),
                              CollectionSchema{}.default_recall_target));
  PEAKKNN_ASSIGN_OR_RETURN(std::unique_ptr<Collection> c,
                           Collection::Create(schema));
  v1::CreateCollectionResponse resp;
  server::SchemaToProto(c->schema(), resp.mutable_info()->mutable_schema());
  return Finish(resp);
}

absl::Status Search(std::string_view bytes) {
  v1::SearchRequest req;
  PEAKKNN_RETURN_IF_ERROR(Parse(bytes, &req));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckName("collection", req.collection()));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckK(req.k()));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckRecallTarget(req.recall_target()));
  PEAKKNN_ASSIGN_OR_RETURN(std::unique_ptr<Collection> c,
                           Open(req.collection()));
  const CollectionSchema& schema = c->schema();
  const std::span<const float> queries = SpanOf(req.queries());
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckVectors(
      "queries", queries, schema.dim, -1, Limits().max_queries_per_request,
      "--max_queries_per_request"));
  const int64_t num_queries = static_cast<int64_t>(queries.size()) / schema.dim;
  PEAKKNN_RETURN_IF_ERROR(
      CheckVectors(schema, queries, num_queries, "queries"));
  SearchParams params;
  params.k = req.k();
  params.recall_target = req.recall_target() == 0 ? schema.default_recall_target
                                                  : req.recall_target();
  PEAKKNN_ASSIGN_OR_RETURN(const SearchResults results,
                           c->SearchChecked(queries, params));
  v1::SearchResponse resp;
  server::SearchResultsToProto(results, 0, num_queries, params.k, &resp);
  return Finish(resp);
}

// WriteAdmission::WriteRows, then the core's write.
absl::Status WriteRows(std::string_view collection, WriteMode mode,
                       std::span<const uint64_t> ids,
                       std::span<const float> vectors) {
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckName("collection", AV(collection)));
  PEAKKNN_RETURN_IF_ERROR(
      Limits().CheckIds("ids", static_cast<int64_t>(ids.size())));
  PEAKKNN_ASSIGN_OR_RETURN(std::unique_ptr<Collection> c, Open(collection));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckVectors(
      "vectors", vectors, c->schema().dim, static_cast<int64_t>(ids.size()),
      Limits().max_rows_per_write, "--max_rows_per_write"));
  return c->Write(mode, ids, vectors);
}

absl::Status InsertBatch(std::string_view bytes) {
  v1::InsertRequest req;
  PEAKKNN_RETURN_IF_ERROR(Parse(bytes, &req));
  // The first message of a stream must name the collection.
  if (req.collection().empty()) return absl::InvalidArgumentError("none");
  return WriteRows(req.collection(),
                   req.upsert() ? WriteMode::kUpsert : WriteMode::kInsert,
                   SpanOf(req.ids()), SpanOf(req.vectors()));
}

absl::Status Upsert(std::string_view bytes) {
  v1::UpsertRequest req;
  PEAKKNN_RETURN_IF_ERROR(Parse(bytes, &req));
  return WriteRows(req.collection(), WriteMode::kUpsert, SpanOf(req.ids()),
                   SpanOf(req.vectors()));
}

absl::Status Delete(std::string_view bytes) {
  v1::DeleteRequest req;
  PEAKKNN_RETURN_IF_ERROR(Parse(bytes, &req));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckName("collection", req.collection()));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckIds("ids", req.ids_size()));
  PEAKKNN_ASSIGN_OR_RETURN(std::unique_ptr<Collection> c,
                           Open(req.collection()));
  v1::DeleteResponse resp;
  resp.set_deleted(c->Delete(SpanOf(req.ids())));
  return Finish(resp);
}

absl::Status Get(std::string_view bytes) {
  v1::GetRequest req;
  PEAKKNN_RETURN_IF_ERROR(Parse(bytes, &req));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckName("collection", req.collection()));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckIds("ids", req.ids_size()));
  PEAKKNN_ASSIGN_OR_RETURN(std::unique_ptr<Collection> c,
                           Open(req.collection()));
  PEAKKNN_RETURN_IF_ERROR(
      Limits().CheckGetAnswer(req.ids_size(), c->schema().dim));
  v1::GetResponse resp;
  server::StoredVectorsToProto(SpanOf(req.ids()), c->Get(SpanOf(req.ids())),
                               &resp);
  return Finish(resp);
}

absl::Status PlanRecall(std::string_view bytes) {
  v1::PlanRecallRequest req;
  PEAKKNN_RETURN_IF_ERROR(Parse(bytes, &req));
  PEAKKNN_RETURN_IF_ERROR(Limits().CheckK(req.k()));
  PEAKKNN_RETURN_IF_ERROR(
      Limits().CheckPlan(req.recall_target(), req.per_bin(), req.shards()));
  int64_t n = req.n();
  if (!req.collection().empty()) {
    PEAKKNN_RETURN_IF_ERROR(Limits().CheckName("collection", req.collection()));
    if (n == 0) {
      PEAKKNN_ASSIGN_OR_RETURN(std::unique_ptr<Collection> c,
                               Open(req.collection()));
      n = c->Stats().live_rows;
    }
  }
  // In range after CheckPlan.
  const int per_bin = req.per_bin() == 0 ? 1 : static_cast<int>(req.per_bin());
  const int shards = req.shards() == 0 ? 1 : static_cast<int>(req.shards());
  PEAKKNN_ASSIGN_OR_RETURN(
      const RecallPlan plan,
      peakknn::PlanRecall(n, req.k(), req.recall_target(), per_bin, shards));
  v1::PlanRecallResponse resp;
  server::PlanToProto(plan, n, &resp);
  return Finish(resp);
}

}  // namespace

void FuzzOne(uint8_t method, std::string_view bytes) {
  using Handler = absl::Status (*)(std::string_view);
  static constexpr Handler kHandlers[] = {
      CreateCollection, Search, InsertBatch, Upsert, Delete, Get, PlanRecall};
  const absl::Status status = kHandlers[method % std::size(kHandlers)](bytes);
  // The server answers with the status; only an internal error would be a
  // bug (every failure a request can cause has a client-side code).
  if (status.code() == absl::StatusCode::kInternal) {
    std::fprintf(stderr, "INTERNAL for a request: %s\n",
                 std::string(status.message()).c_str());
    std::abort();
  }
}

}  // namespace peakknn::fuzz
