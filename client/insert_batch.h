// InsertBatch: one InsertStream message (peakknn.v1.InsertRequest) written
// to the wire straight from the caller's arrays.
//
// Building a v1::InsertRequest copies the vectors into the message, and
// gRPC's serialiser copies them again into its buffer. InsertBatch's
// serialiser encodes the small fields (collection, ids, batch_tag, upsert)
// with protobuf and appends the vectors field by hand, its bytes taken in
// place: the ByteBuffer is [small fields][tag, length][the caller's floats
// as a static slice]. The server parses it as an ordinary InsertRequest
// (field order does not matter to protobuf; packed floats are little-endian
// IEEE on the wire, as in memory here).
//
// Lifetime: the vectors must stay valid and unchanged until the stream that
// wrote the batch has finished (gRPC may send the slice after Write
// returns). Client::InsertAll keeps them for its whole call.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/impl/codegen/proto_utils.h"  // protobuf messages (the acks)
#include "grpcpp/impl/serialization_traits.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/status.h"
#include "grpcpp/support/sync_stream.h"
#include "peakknn/v1/vector_search.pb.h"

namespace peakknn::client {

struct InsertBatch {
  std::string collection;  // empty after the first message of a stream
  std::span<const uint64_t> ids;
  std::span<const float> vectors;  // ids.size() * dim, read in place
  uint64_t batch_tag = 0;
  bool upsert = false;
};

// The wire bytes of `batch`, as a v1::InsertRequest.
grpc::Status SerializeInsertBatch(const InsertBatch& batch,
                                  grpc::ByteBuffer* out);

// peakknn.v1.VectorSearch/InsertStream with InsertBatch requests.
std::unique_ptr<grpc::ClientReaderWriter<InsertBatch, v1::InsertAck>>
OpenInsertStream(grpc::ChannelInterface* channel, grpc::ClientContext* ctx);

}  // namespace peakknn::client

namespace grpc {

template <>
class SerializationTraits<peakknn::client::InsertBatch, void> {
 public:
  static Status Serialize(const peakknn::client::InsertBatch& batch,
                          ByteBuffer* buffer, bool* own_buffer) {
    *own_buffer = true;
    return peakknn::client::SerializeInsertBatch(batch, buffer);
  }
  // Only ever sent.
  static Status Deserialize(ByteBuffer*, peakknn::client::InsertBatch*) {
    return Status(StatusCode::UNIMPLEMENTED,
                  "InsertBatch is write-only (read a v1::InsertRequest)");
  }
};

}  // namespace grpc
