// Conversions between the public proto types (peakknn.v1) and the engine's
// and absl's types. The only place that knows both spellings.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/schema.h"
#include "grpcpp/support/status.h"
#include "peakknn/v1/vector_search.pb.h"
#include "store/collection_manager.h"
#include "store/durability.h"

namespace peakknn::server {

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

}  // namespace peakknn::server
