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

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "base/status_macros.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/convert.h"
#include "server/inflight_budget.h"

namespace peakknn::server {

template <typename Request, typename Response>
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // The response is serialized into `raw_response` by Finish. Both are
  // gRPC's, valid until OnDone.
  UnaryCall(const grpc::ByteBuffer* raw_request, grpc::ByteBuffer* raw_response)
      : raw_request_(raw_request), raw_response_(raw_response) {}

  // Reserves the request's memory (its wire bytes and the parsed message)
  // from `budget` until the call ends, then parses it: OK,
  // RESOURCE_EXHAUSTED (nothing parsed), or INVALID_ARGUMENT saying the
  // bytes are not a Request. Call once, before request().
  absl::Status Admit(InflightBudget* budget, std::string_view method) {
    PEAKKNN_ASSIGN_OR_RETURN(
        held_, budget->Reserve(2 * static_cast<int64_t>(raw_request_->Length()),
                               method));
    return ParseMessage(*raw_request_, &request_);
  }
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
  const grpc::ByteBuffer* const raw_request_;
  grpc::ByteBuffer* const raw_response_;
  InflightBytes held_;  // the request's share of --max_inflight_bytes
  Request request_;
  Response response_;
};

}  // namespace peakknn::server
