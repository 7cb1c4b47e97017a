// The messages of a shard's write stream (peakknn.v1.ShardWriteBatch in
// proto/peakknn/v1/cluster.proto): one batch of inserts, upserts or deletes
// of ids that all belong to the stream's shard (router/shard_hash.h).
//
// The router encodes a batch once it has checked it against the schema;
// every replica of the shard decodes and applies it. A message that does
// not decode, or does not fit the collection's schema, can never be
// applied: decoding reports it as DATA_LOSS naming the stream and sequence,
// and the replica stops there rather than skip a write (skipping would make
// its rows differ from its peers' without anyone knowing).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/schema.h"
#include "peakknn/v1/cluster.pb.h"

namespace peakknn {

// `vectors`: ids.size() * dim floats, row-major, for insert and upsert;
// empty for delete.
std::string EncodeShardWriteBatch(v1::ShardWriteBatch::Mode mode,
                                  std::span<const uint64_t> ids,
                                  std::span<const float> vectors);

// Parses a stream message and checks it against `schema`: a known mode,
// for insert/upsert rows that pass CheckWriteBatch (dim, finite values, no
// id twice), for delete no vectors. DATA_LOSS otherwise, e.g. "stream
// peakknn_docs_0 sequence 17: ShardWriteBatch: vectors has 5 values, not
// 2 ids x dim 4".
absl::StatusOr<v1::ShardWriteBatch> DecodeShardWriteBatch(
    std::string_view bytes, const CollectionSchema& schema,
    std::string_view stream, uint64_t sequence);

}  // namespace peakknn
