// One unary call whose request the service parses itself.
//
// Why: gRPC 1.51's callback API answers a request that does not parse as
// its method's message (garbage bytes, a truncated message, invalid UTF-8
// in a string field) with UNIMPLEMENTED and an empty message, before any
// handler runs, and no hook lets the server answer otherwise. So
// VectorSearchService registers every method raw (grpc::ByteBuffer in and
// out: the generated WithRawCallbackMethod_*) and parses here, answering
// INVALID_ARGUMENT naming the message type. The parse is the one gRPC
// would have done (same reader, same cost).
//
// A UnaryCall is the call's reactor: the handler creates it, and it deletes
// itself when gRPC is done with the call (OnDone), so its request and
// response stay valid until then, also while the core reads the request's
// vectors in place for an asynchronous write.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/convert.h"

namespace peakknn::server {

template <typename Request, typename Response>
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // Parses `raw_request` (see parsed()); the response is serialized into
  // `raw_response` by Finish. Both are gRPC's, valid until OnDone.
  UnaryCall(const grpc::ByteBuffer* raw_request, grpc::ByteBuffer* raw_response)
      : raw_response_(raw_response),
        parsed_(ParseMessage(*raw_request, &request_)) {}

  // OK, or INVALID_ARGUMENT saying the bytes are not a Request.
  const absl::Status& parsed() const { return parsed_; }
  const Request* request() const { return &request_; }
  Response* response() { return &response_; }

  // Sends the response when `status` is OK, then `status`. Call once.
  void Finish(const absl::Status& status) {
    absl::Status sent = status;
    if (sent.ok()) sent = SerializeMessage(response_, raw_response_);
    grpc::ServerUnaryReactor::Finish(ToGrpcStatus(sent));
  }

  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer* const raw_response_;
  Request request_;
  Response response_;
  const absl::Status parsed_;  // after request_, which it parses into
};

}  // namespace peakknn::server
