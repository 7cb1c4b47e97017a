#include "router/shard_write_batch.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "engine/vector_checks.h"
#include "server/convert.h"

namespace peakknn {
namespace {

using server::SpanOf;

absl::Status Undecodable(std::string_view stream, uint64_t sequence,
                         std::string_view why) {
  return absl::DataLossError(absl::StrCat("stream ", AV(stream), " sequence ",
                                          sequence,
                                          ": ShardWriteBatch: ", AV(why)));
}

}  // namespace

std::string EncodeShardWriteBatch(v1::ShardWriteBatch::Mode mode,
                                  std::span<const uint64_t> ids,
                                  std::span<const float> vectors) {
  v1::ShardWriteBatch batch;
  batch.set_mode(mode);
  batch.mutable_ids()->Add(ids.begin(), ids.end());
  batch.mutable_vectors()->Add(vectors.begin(), vectors.end());
  return batch.SerializeAsString();
}

absl::StatusOr<v1::ShardWriteBatch> DecodeShardWriteBatch(
    std::string_view bytes, const CollectionSchema& schema,
    std::string_view stream, uint64_t sequence) {
  v1::ShardWriteBatch batch;
  if (!batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Undecodable(stream, sequence,
                       absl::StrCat("not a ShardWriteBatch message (",
                                    bytes.size(), " bytes)"));
  }
  switch (batch.mode()) {
    case v1::ShardWriteBatch::MODE_INSERT:
    case v1::ShardWriteBatch::MODE_UPSERT: {
      const int64_t expected = int64_t{batch.ids_size()} * schema.dim;
      if (batch.vectors_size() != expected) {
        return Undecodable(
            stream, sequence,
            absl::StrCat("vectors has ", batch.vectors_size(), " values, not ",
                         batch.ids_size(), " ids x dim ", schema.dim));
      }
      if (absl::Status s = CheckWriteBatch(schema, SpanOf(batch.ids()),
                                           SpanOf(batch.vectors()));
          !s.ok()) {
        return Undecodable(stream, sequence, SV(s.message()));
      }
      return batch;
    }
    case v1::ShardWriteBatch::MODE_DELETE:
      if (batch.vectors_size() != 0) {
        return Undecodable(
            stream, sequence,
            absl::StrCat("a delete carries ", batch.vectors_size(),
                         " vector values"));
      }
      return batch;
    default:
      return Undecodable(stream, sequence,
                         absl::StrCat("mode ", static_cast<int>(batch.mode()),
                                      " is not insert, upsert or delete"));
  }
}

}  // namespace peakknn
