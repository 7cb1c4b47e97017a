#include "client/insert_batch.h"

#include <bit>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/support/slice.h"

namespace peakknn::client {

static_assert(std::endian::native == std::endian::little,
              "packed floats go on the wire in memory order");

grpc::Status SerializeInsertBatch(const InsertBatch& batch,
                                  grpc::ByteBuffer* out) {
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  v1::InsertRequest head;  // everything but the vectors
  head.set_collection(batch.collection);
  head.mutable_ids()->Add(batch.ids.begin(), batch.ids.end());
  head.set_batch_tag(batch.batch_tag);
  head.set_upsert(batch.upsert);
  const size_t vector_bytes = batch.vectors.size() * sizeof(float);
  if (vector_bytes > UINT32_MAX) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "InsertBatch: vectors exceed 4 GiB");
  }
  std::string bytes;
  if (!head.SerializeToString(&bytes)) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "InsertBatch: serialising the ids failed");
  }
  grpc::Slice slices[2];
  size_t count = 1;
  if (vector_bytes > 0) {
    uint8_t field[16];
    uint8_t* end = CodedOutputStream::WriteTagToArray(
        WireFormatLite::MakeTag(v1::InsertRequest::kVectorsFieldNumber,
                                WireFormatLite::WIRETYPE_LENGTH_DELIMITED),
        field);
    end = CodedOutputStream::WriteVarint32ToArray(
        static_cast<uint32_t>(vector_bytes), end);
    bytes.append(reinterpret_cast<const char*>(field), end - field);
    slices[1] = grpc::Slice(batch.vectors.data(), vector_bytes,
                            grpc::Slice::STATIC_SLICE);
    count = 2;
  }
  slices[0] = grpc::Slice(std::move(bytes));
  grpc::ByteBuffer buffer(slices, count);
  out->Swap(&buffer);
  return grpc::Status::OK;
}

std::unique_ptr<grpc::ClientReaderWriter<InsertBatch, v1::InsertAck>>
OpenInsertStream(grpc::ChannelInterface* channel, grpc::ClientContext* ctx) {
  // What the generated Stub::InsertStream does, with InsertBatch requests.
  const grpc::internal::RpcMethod method(
      "/peakknn.v1.VectorSearch/InsertStream",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  return std::unique_ptr<grpc::ClientReaderWriter<InsertBatch, v1::InsertAck>>(
      grpc::internal::ClientReaderWriterFactory<
          InsertBatch, v1::InsertAck>::Create(channel, method, ctx));
}

}  // namespace peakknn::client
