#include "server/convert.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"

namespace peakknn::server {

absl::Status ParseMessage(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* message) {
  grpc::ByteBuffer consumed = bytes;  // shares the slices; parsing clears it
  const size_t size = consumed.Length();
  if (!grpc::SerializationTraits<google::protobuf::Message>::Deserialize(
           &consumed, message)
           .ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot parse the request as ", message->GetTypeName(), ": its ", size,
        " bytes are not one (malformed or truncated, or a string field that "
        "is not UTF-8)"));
  }
  return absl::OkStatus();
}

absl::Status SerializeMessage(const google::protobuf::Message& message,
                              grpc::ByteBuffer* bytes) {
  bytes->Clear();  // the writer appends to an empty buffer only
  bool own_buffer = false;
  const grpc::Status status =
      grpc::SerializationTraits<google::protobuf::Message>::Serialize(
          message, bytes, &own_buffer);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("cannot serialize ",
                                            message.GetTypeName(), ": ",
                                            status.error_message()));
  }
  return absl::OkStatus();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::StatusOr<CollectionSchema> SchemaFromProto(const v1::CollectionSchema& p,
                                                 double default_recall) {
  CollectionSchema schema;
  schema.name = p.name();
  schema.dim = static_cast<int>(p.dim());
  if (p.dim() > static_cast<uint32_t>(kMaxDim)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schema.dim=", p.dim(), ": must be in [1, ", kMaxDim, "]"));
  }
  switch (p.metric()) {
    case v1::METRIC_L2:
      schema.metric = Metric::kL2;
      break;
    case v1::METRIC_INNER_PRODUCT:
      schema.metric = Metric::kInnerProduct;
      break;
    case v1::METRIC_COSINE:
      schema.metric = Metric::kCosine;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "schema.metric=", p.metric(),
          ": must be METRIC_L2, METRIC_INNER_PRODUCT or METRIC_COSINE"));
  }
  switch (p.dtype()) {
    case v1::DTYPE_UNSPECIFIED:
    case v1::DTYPE_F32:
      schema.dtype = DType::kF32;
      break;
    case v1::DTYPE_BF16:
      schema.dtype = DType::kBf16;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "schema.dtype=", p.dtype(), ": must be DTYPE_F32 or DTYPE_BF16"));
  }
  schema.default_recall_target = p.default_recall_target() == 0
                                     ? default_recall
                                     : p.default_recall_target();
  return schema;
}

void SchemaToProto(const CollectionSchema& schema, v1::CollectionSchema* p) {
  p->set_name(schema.name);
  p->set_dim(static_cast<uint32_t>(schema.dim));
  switch (schema.metric) {
    case Metric::kL2:
      p->set_metric(v1::METRIC_L2);
      break;
    case Metric::kInnerProduct:
      p->set_metric(v1::METRIC_INNER_PRODUCT);
      break;
    case Metric::kCosine:
      p->set_metric(v1::METRIC_COSINE);
      break;
  }
  p->set_dtype(schema.dtype == DType::kBf16 ? v1::DTYPE_BF16 : v1::DTYPE_F32);
  p->set_default_recall_target(schema.default_recall_target);
}

void InfoToProto(const CollectionInfo& info, v1::CollectionInfo* p) {
  SchemaToProto(info.schema, p->mutable_schema());
  p->set_rows(info.rows);
  p->set_live_rows(info.live_rows);
  p->set_memory_bytes(info.memory_bytes);
  p->set_last_sequence(info.durable_sequence);
  p->set_disk_bytes(info.disk_bytes);
}

v1::Durability DurabilityToProto(Durability durability) {
  switch (durability) {
    case Durability::kFsync:
      return v1::DURABILITY_FSYNC;
    case Durability::kNone:
      return v1::DURABILITY_NONE;
    case Durability::kDefault:
      break;
  }
  return v1::DURABILITY_UNSPECIFIED;
}

void SearchResultsToProto(const SearchResults& batch, int64_t first, int64_t n,
                          int64_t k, v1::SearchResponse* p) {
  for (int64_t q = first; q < first + n; ++q) {
    v1::QueryResult* out = p->add_results();
    const int64_t count = std::min<int64_t>(batch.counts[q], k);
    const int64_t base = q * batch.k;
    out->mutable_ids()->Add(batch.ids.begin() + base,
                            batch.ids.begin() + base + count);
    out->mutable_distances()->Add(batch.distances.begin() + base,
                                  batch.distances.begin() + base + count);
  }
  p->set_exact(batch.exact);
  p->set_bins(batch.bins);
  p->set_live_rows(batch.live_rows);
  p->set_expected_recall(
      batch.exact ? 1.0 : ExpectedRecall(batch.live_rows, k, batch.bins));
  p->set_worst_rank_recall(
      batch.exact ? 1.0 : WorstRankRecall(batch.live_rows, k, batch.bins));
}

absl::StatusOr<ReadConsistency> ConsistencyFromProto(
    v1::Consistency mode, const v1::ConsistencyToken& after) {
  ReadConsistency consistency;
  switch (mode) {
    case v1::CONSISTENCY_EVENTUAL:
      return consistency;
    case v1::CONSISTENCY_STRONG:
      consistency.strong = true;
      return consistency;
    case v1::CONSISTENCY_SESSION:
      if (after.shard_sequences_size() == 0) {
        return absl::InvalidArgumentError(
            "consistency=CONSISTENCY_SESSION needs `after`: the token (or "
            "merged tokens) of the writes the read must see");
      }
      consistency.after.assign(after.shard_sequences().begin(),
                               after.shard_sequences().end());
      return consistency;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("consistency=", static_cast<int>(mode),
                       ": must be CONSISTENCY_EVENTUAL, CONSISTENCY_SESSION or "
                       "CONSISTENCY_STRONG"));
  }
}

void TokenToProto(const WriteAck& ack, v1::ConsistencyToken* p) {
  if (ack.shard_sequences.empty()) {
    p->add_shard_sequences(ack.sequence);
    return;
  }
  p->mutable_shard_sequences()->Add(ack.shard_sequences.begin(),
                                    ack.shard_sequences.end());
}

void StoredVectorsToProto(
    std::span<const uint64_t> ids,
    const std::vector<std::optional<std::vector<float>>>& vectors,
    v1::GetResponse* p) {
  for (size_t i = 0; i < ids.size(); ++i) {
    v1::StoredVector* out = p->add_vectors();
    out->set_id(ids[i]);
    out->set_found(vectors[i].has_value());
    if (vectors[i].has_value()) {
      out->mutable_values()->Add(vectors[i]->begin(), vectors[i]->end());
    }
  }
}

void PlanToProto(const RecallPlan& plan, int64_t n, v1::PlanRecallResponse* p) {
  p->set_exact(plan.exact);
  p->set_bins(plan.bins);
  p->set_bins_per_shard(plan.bins_per_shard);
  p->set_per_bin(static_cast<uint32_t>(plan.per_bin));
  p->set_expected_recall(plan.expected_recall);
  p->set_worst_rank_recall(plan.worst_rank_recall);
  p->set_conservative_bins(plan.conservative_bins);
  p->set_n(n);
}

}  // namespace peakknn::server
