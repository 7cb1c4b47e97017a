// The InsertStream RPC: one reactor per call, pipelined for group commit.
//
// Each batch read passes WriteAdmission and goes to the core, and the next
// read starts while it commits: a stream keeps up to 64 batches (and about
// 64 MiB of ids and vectors) unacknowledged at once, so while one group is
// being fsynced the next group fills, and batches of every stream share a
// log append and an fsync. Acks go out in stream order, each once the core
// acknowledged its batch (durable per --durability and visible), with the
// batch's sequence number; a failed batch is acked with its own code and
// message and the stream goes on; so is a message that does not parse as an
// InsertRequest (INVALID_ARGUMENT, batch_tag 0). The first message names the
// collection; a later one may repeat the name but not name another.
//
// Each batch is parsed into its own request, which the core reads in place
// (no copy of the vectors) until it acknowledges the batch; requests are
// then reused by the stream (server/request_pool.h bounds what an idle
// stream keeps). A stream past --max_insert_streams is refused with
// RESOURCE_EXHAUSTED, and one idle past --insert_stream_idle_s is closed
// with UNAVAILABLE (server/insert_stream_registry.h).
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "peakknn/v1/vector_search.pb.h"
#include "server/inflight_budget.h"
#include "server/insert_stream_registry.h"
#include "server/metrics.h"
#include "server/write_admission.h"

namespace peakknn::server {

// What an InsertStream uses of the server; each must outlive the call.
struct InsertStreamServices {
  WriteAdmission* admission;
  Metrics* metrics;
  InsertStreamRegistry* streams;
  InflightBudget* budget;  // each pipelined batch reserves its bytes here
};

// The reactor of one InsertStream call, on wire bytes (unary_call.h says
// why the server parses itself); it deletes itself when the call is done.
// `authorized` is the caller's authorization (authorizer.h): a refused
// call is finished with it at once, before it takes a place among
// --max_insert_streams. A batch that does not fit --max_inflight_bytes is
// acked with RESOURCE_EXHAUSTED (batch_tag 0: it is refused unread) and the
// stream goes on.
grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
NewInsertStreamReactor(const absl::Status& authorized,
                       const InsertStreamServices& services);

}  // namespace peakknn::server
