// The router's gRPC channels to shard replicas: one channel (and stub) per
// replica address, made on first use and kept for the router's lifetime
// (a replica that restarts at the same address is reconnected by gRPC;
// addresses of replicas gone for good stay cached, a few bytes each).
//
// Every call the router makes to a replica goes through a ClientContext
// from NewContext: the per-attempt deadline and, when the replicas require
// role tokens (server/auth_tokens.h), the router's own token.
//
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "peakknn/v1/vector_search.grpc.pb.h"

namespace peakknn {

struct ShardChannelOptions {
  // Plaintext when null (replicas on a private network or loopback).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Sent as "authorization: Bearer <token>" when not empty; the replicas
  // need it to grant the read role.
  std::string token;
};

class ShardChannels {
 public:
  explicit ShardChannels(ShardChannelOptions options);

  // The stub for `address` (host:port), made on first use.
  std::shared_ptr<v1::VectorSearch::Stub> Stub(const std::string& address);

  // A context for one call that must end by `deadline`.
  std::unique_ptr<grpc::ClientContext> NewContext(absl::Time deadline) const;

 private:
  const ShardChannelOptions options_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<v1::VectorSearch::Stub>>
      stubs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace peakknn
