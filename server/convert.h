// Conversions between the public proto types (peakknn.v1) and the engine's
// and absl's types. The only place that knows both spellings.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/collection.h"
#include "engine/recall_calculator.h"
#include "engine/schema.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/status.h"
#include "peakknn/v1/vector_search.pb.h"
#include "store/durability.h"
#include "store/service_core.h"

namespace peakknn::server {

// A packed repeated field as a span, without copying.
template <typename T>
std::span<const T> SpanOf(const google::protobuf::RepeatedField<T>& field) {
  return {field.data(), static_cast<size_t>(field.size())};
}

// A message from its wire bytes; INVALID_ARGUMENT naming the message type
// when the bytes are not one (malformed or truncated, or a string field that
// is not UTF-8). unary_call.h says why the server parses itself.
absl::Status ParseMessage(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* message);
// A message's wire bytes, replacing what `bytes` held; INTERNAL when it
// cannot be serialized.
absl::Status SerializeMessage(const google::protobuf::Message& message,
                              grpc::ByteBuffer* bytes);

// absl and gRPC share the canonical code numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// Checks the enums (metric required) and applies the default recall target
// `default_recall` when the request leaves it 0; the rest is checked by
// ValidateSchema.
absl::StatusOr<CollectionSchema> SchemaFromProto(const v1::CollectionSchema& p,
                                                 double default_recall);
void SchemaToProto(const CollectionSchema& schema, v1::CollectionSchema* p);
void InfoToProto(const CollectionInfo& info, v1::CollectionInfo* p);
v1::Durability DurabilityToProto(Durability durability);

// One request's share of a search batch: queries [first, first + n) of
// `batch`, each cut to the request's own k. The batch's bins are judged at
// that k over the live rows the batch searched (its snapshot's).
void SearchResultsToProto(const SearchResults& batch, int64_t first, int64_t n,
                          int64_t k, v1::SearchResponse* p);
// Get's answer: one entry per id, in request order, found or not.
void StoredVectorsToProto(
    std::span<const uint64_t> ids,
    const std::vector<std::optional<std::vector<float>>>& vectors,
    v1::GetResponse* p);
// A read's consistency: SESSION needs a token in `after`
// (INVALID_ARGUMENT otherwise, as for an unknown mode); EVENTUAL ignores it.
absl::StatusOr<ReadConsistency> ConsistencyFromProto(
    v1::Consistency mode, const v1::ConsistencyToken& after);
// An acknowledged write's token: its shard sequences (cluster mode), or
// its log sequence (a local store).
void TokenToProto(const WriteAck& ack, v1::ConsistencyToken* p);
// A recall plan for `n` rows.
void PlanToProto(const RecallPlan& plan, int64_t n, v1::PlanRecallResponse* p);

}  // namespace peakknn::server
