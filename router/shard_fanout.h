// One call to every shard of a collection, in parallel, each answered by
// one of the shard's replicas: the router's way to search and read.
//
// Per shard, the replicas are tried in the order given (the caller rotates
// it to spread load): an attempt that fails with a code another replica
// may not (UNAVAILABLE: down or restarting; DEADLINE_EXCEEDED: hung, e.g.
// SIGSTOPped, or overloaded, after `attempt_timeout`; NOT_FOUND: the
// replica has not created the collection yet; RESOURCE_EXHAUSTED: its
// queue is full) moves on to the next replica. Any other code (the request
// itself is wrong) ends the fan-out with that error. A shard none of whose
// replicas answered fails the fan-out with UNAVAILABLE naming the shard and
// each replica's error; there are no partial answers.
//
// Cost: S parallel calls, each one round trip to a replica when it is
// healthy, plus attempt_timeout per hung replica tried before a healthy
// one. The calling thread waits; the calls run on gRPC's threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "router/shard_channels.h"

namespace peakknn {

struct ShardTarget {
  std::string replica;  // its name, for messages
  std::string address;  // host:port
  // The stream sequence its last heartbeat reported applied (for ordering;
  // the fan-out does not use it).
  uint64_t applied = 0;
};

// One shard to call and its replicas, in the order to try.
struct ShardTargets {
  int shard = 0;  // for messages
  std::vector<ShardTarget> replicas;
};

// Starts one attempt of the call of `slot` (an index into the fan-out's
// targets) on `stub` with `context`;
// must call `done` exactly once, from any thread (gRPC's callback API:
// `stub.async()->Search(context, &request, &response, done)`). It should
// reset the slot's response first: a failed attempt may have filled part.
using StartShardCall = std::function<void(
    v1::VectorSearch::Stub& stub, grpc::ClientContext* context, int slot,
    std::function<void(grpc::Status)> done)>;

struct FanOutOptions {
  absl::Duration attempt_timeout = absl::Seconds(5);
};

// OK when every shard in `targets` answered.
absl::Status FanOut(ShardChannels& channels,
                    const std::vector<ShardTargets>& targets,
                    const StartShardCall& start, const FanOutOptions& options);

}  // namespace peakknn
